"""Followers of a finished job: what must happen when a job reaches a terminal state.

A job's `sys.on_finish` lists actions (today: activate a pending job, as cron's `enqueue`
overlap policy needs). The transition that finishes the job arms a `finished` timer before its
compare-and-set; this handler then runs the actions. Each action is idempotent, so a redelivered
timer repeats nothing.
"""

from __future__ import annotations

import contextlib
import logging

from ojs_nats.errors import ConflictError, NotFoundError
from ojs_nats.model import job as jobs
from ojs_nats.model.lifecycle import TERMINAL, State
from ojs_nats.service.apply import transition
from ojs_nats.service.context import Context
from ojs_nats.storage import FiredTimer

log = logging.getLogger(__name__)

IN_FLIGHT_RETRY_MS = 50
IN_FLIGHT_GRACE_MS = 30_000


async def on_job_finished(ctx: Context, timer: FiredTimer) -> None:
    timers = ctx.storage.timers
    job_id, step = jobs.parse_timer_key(timer.key)
    stored = await ctx.storage.jobs.get(job_id)
    if stored is None:
        await timers.done(timer)
        return
    record = stored.record
    if int(record["sys"]["step"]) < step:  # the finishing write has not landed (yet)
        if timer.age_ms < IN_FLIGHT_GRACE_MS:
            await timers.again_in(timer, IN_FLIGHT_RETRY_MS)
        else:
            await timers.done(timer)
        return
    if State(record["job"]["state"]) in TERMINAL:
        for action in record["sys"].get("on_finish") or []:
            await _run(ctx, action)
    await timers.done(timer)


async def _run(ctx: Context, action: dict[str, object]) -> None:
    target = action.get("activate")
    if isinstance(target, str):
        # Already activated, cancelled or gone: nothing left to do then.
        with contextlib.suppress(ConflictError, NotFoundError):
            await transition(ctx, target, jobs.activate)
        return
    log.warning("unknown follower action %r ignored", action)
