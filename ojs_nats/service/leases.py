"""Shared lease timers: one durable timer watches all the jobs one FETCH claimed.

A per-job lease timer costs a schedule when the job is claimed and a purge when it is acked:
two of the few JetStream operations a job's whole life needs. Instead, the claims of one fetch
join a `LeaseGroup`; once every claim of the fetch has joined (or given up), one `lease` timer is
armed for the group, before any of those claims is written (the usual timer-first order: a crash
leaves a timer for claims that never happened, never a claim without a timer). Acks do nothing
to it. When it fires, it reads the group's records in one request: jobs that moved on are
dropped, expired leases are requeued or timed out, and the rest form a new group timer for their
next deadline. Group timers never wait longer than `HORIZON_MS`, so the timer stream holds about
one schedule per fetch of the last minute.
"""

from __future__ import annotations

import asyncio
import logging

from ojs_nats.model import ids
from ojs_nats.model import job as jobs
from ojs_nats.model.lifecycle import State
from ojs_nats.service.apply import commit
from ojs_nats.service.context import Context
from ojs_nats.storage import FiredTimer, RevisionConflict

log = logging.getLogger(__name__)

TIMER_KIND = "lease"
#: A group timer is checked at least this often, even for long leases.
HORIZON_MS = 60_000
#: A member whose claim had not landed when the timer fired is looked at again this late, for
#: at most IN_FLIGHT_GRACE_MS.
IN_FLIGHT_RETRY_MS = 1_000
IN_FLIGHT_GRACE_MS = 30_000


class LeaseGroup:
    """The claims of one fetch. Each participant calls `join` (it will claim) or `leave` once."""

    def __init__(self, ctx: Context, participants: int) -> None:
        self._ctx = ctx
        self._pending = participants
        self._members: list[tuple[str, int, int]] = []
        self._armed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._closed = False

    async def join(self, job_id: str, step: int, due: int) -> bool:
        """Add a claim about to be written; waits until the group timer covers it. False when
        the group was armed already (a retried claim): the job then needs a timer of its own."""
        if self._closed:
            return False
        self._members.append((job_id, step, due))
        await self._one_done()
        await asyncio.shield(self._armed)
        return True

    async def leave(self) -> None:
        """A participant that will not claim (stale entry, expired job, limits, failure)."""
        if not self._closed:
            await self._one_done()

    async def _one_done(self) -> None:
        self._pending -= 1
        if self._pending > 0 or self._closed:
            return
        self._closed = True
        try:
            if self._members:
                await arm(self._ctx, self._members)
        except BaseException as exc:
            self._armed.set_exception(exc)
            raise
        self._armed.set_result(None)


async def arm(ctx: Context, members: list[tuple[str, int, int]]) -> None:
    """One timer for `members` (job id, step of the claim, lease due), at the earliest due."""
    due = min(min(d for _, _, d in members), ctx.clock() + HORIZON_MS)
    payload = {"jobs": [[job_id, step] for job_id, step, _ in members]}
    await ctx.storage.timers.arm(TIMER_KIND, ids.uuid7(), due, payload)


async def on_lease_timer(ctx: Context, timer: FiredTimer) -> None:
    """Requeue or time out the group's expired leases; re-arm for the others; then ack."""
    members = [(str(job_id), int(step)) for job_id, step in timer.data.get("jobs", [])]
    stored = await ctx.storage.jobs.get_many([job_id for job_id, _ in members])
    now = ctx.clock()
    later: list[tuple[str, int, int]] = []
    for job_id, step in members:
        entry = stored.get(job_id)
        if entry is None:
            continue  # gone (expired record) or never written: nothing to watch
        record = entry.record
        current = int(record["sys"]["step"])
        if current < step:  # the claim had not landed when the timer fired
            if timer.age_ms < IN_FLIGHT_GRACE_MS:
                later.append((job_id, step, now + IN_FLIGHT_RETRY_MS))
            continue
        if current > step or record["job"]["state"] != State.ACTIVE:
            continue  # acked, failed, cancelled or claimed again: the lease is over
        change = jobs.on_wake(record, now)
        if change is None:
            later.append((job_id, step, jobs.next_wake(record) or now + HORIZON_MS))
            continue
        try:
            await commit(ctx, change, entry, timer_fired=True)
        except RevisionConflict:
            later.append((job_id, step, now))  # changed meanwhile: look again at once
    if later:
        await arm(ctx, later)
    await ctx.storage.timers.done(timer)
