"""What a fired job timer does: promote, expire, requeue or time out the job, or re-arm.

The timer names the job and the step it was armed for. A timer for an older step is stale (the
job moved on and armed its own) and is dropped. Otherwise the record decides (`model.job.on_wake`);
a timer that fired early, or a lease a heartbeat extended, is armed again for the right time.
"""

from __future__ import annotations

import asyncio
import logging

from ojs_nats.model import job as jobs
from ojs_nats.service.apply import TIMER_KIND, commit, commit_promotions
from ojs_nats.service.context import Context
from ojs_nats.storage import FiredTimer, RevisionConflict, Stored

log = logging.getLogger(__name__)

#: A job timer may fire before the record it belongs to is written (scheduled a few ms ahead):
#: look again this often, for at most this long.
MISSING_RETRY_MS = 100
MISSING_GRACE_MS = 30_000
#: Below this, "not yet due" is handled by redelivering the fired timer (precise to a few ms)
#: instead of arming a new schedule.
SHORT_WAIT_MS = 3_000
#: Fewer promotions than this at once are not worth a batched read and write.
PROMOTE_MIN = 4


async def on_job_timer(ctx: Context, timer: FiredTimer) -> None:
    """Handle one fired job timer; acks it only when handled (a crash means redelivery)."""
    timers = ctx.storage.timers
    job_id, step = jobs.parse_timer_key(timer.key)
    for _ in range(8):
        stored = await ctx.storage.jobs.get(job_id)
        if stored is None or int(stored.record["sys"]["step"]) < step:
            log.debug(
                "timer %s: record missing or behind (fired %d ms ago)", timer.key, timer.age_ms
            )
            if timer.age_ms < MISSING_GRACE_MS:
                await timers.again_in(timer, MISSING_RETRY_MS)
            else:
                await timers.done(timer)
            return
        if int(stored.record["sys"]["step"]) > step:
            await timers.done(timer)  # stale: the job moved on and armed its own timer
            return
        now = ctx.clock()
        change = jobs.on_wake(stored.record, now)
        log.debug(
            "timer %s: state %s -> %s (fired %d ms ago, due %s ms ago)",
            timer.key,
            stored.record["job"]["state"],
            change.after if change else None,
            timer.age_ms,
            now - (jobs.next_wake(stored.record) or now),
        )
        if change is None:
            await _not_yet(ctx, timer, stored.record, now)
            return
        try:
            await commit(ctx, change, stored, timer_fired=True)
        except RevisionConflict:
            continue
        await timers.done(timer)
        return
    await timers.again_in(timer, MISSING_RETRY_MS)


def promotes_in_batches(ctx: Context) -> bool:
    """Whether `promote_many` can batch at all: not with replicated streams, whose batched
    reads may come from a follower that lags behind."""
    return not ctx.storage.conn.leader_reads


async def promote_many(ctx: Context, timers: list[FiredTimer]) -> list[FiredTimer]:
    """Handle, in one go, the fired timers of `timers` that make a job available (a delayed job
    or a retry becoming due): one read of all their records, one write of their ready entries,
    one of their records. Returns the timers it did not handle, for `on_job_timer` one by one:
    any other outcome, a record that moved on, or too few to gain anything.
    """
    if len(timers) < PROMOTE_MIN or not promotes_in_batches(ctx):
        return timers
    keys = [jobs.parse_timer_key(timer.key) for timer in timers]
    found = await ctx.storage.jobs.get_many(list({job_id for job_id, _ in keys}))
    now = ctx.clock()
    picked: dict[str, tuple[FiredTimer, jobs.Change, Stored]] = {}
    for timer, (job_id, step) in zip(timers, keys, strict=True):
        stored = found.get(job_id)
        if stored is None or job_id in picked or int(stored.record["sys"]["step"]) != step:
            continue
        change = jobs.on_wake(stored.record, now)
        if change is not None and change.ready and change.wake_at is None and not change.finished:
            picked[job_id] = (timer, change, stored)
    if len(picked) < PROMOTE_MIN or not await commit_promotions(
        ctx, [(change, stored) for _, change, stored in picked.values()]
    ):
        return timers
    handled = {id(timer) for timer, _, _ in picked.values()}
    await asyncio.gather(*(ctx.storage.timers.done(timer) for timer, _, _ in picked.values()))
    return [timer for timer in timers if id(timer) not in handled]


async def _not_yet(ctx: Context, timer: FiredTimer, record: jobs.Record, now: int) -> None:
    due = jobs.next_wake(record)
    if due is None:
        await ctx.storage.timers.done(timer)
    elif due - now <= SHORT_WAIT_MS:
        await ctx.storage.timers.again_in(timer, due - now)
    else:
        await ctx.storage.timers.arm(TIMER_KIND, jobs.timer_key(record), due)
        await ctx.storage.timers.done(timer)
