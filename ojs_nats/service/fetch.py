"""FETCH: claim jobs for a worker, highest priority first, FIFO within a priority.

Per queue in the order asked (paused ones skipped): its limits say how many may start, the ready
index which priorities have entries; each pulled entry is claimed by compare-and-set on its
record, after its concurrency slots (if any) and the lease timer; the entry is acked last.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any

from ojs_nats.model import job as jobs
from ojs_nats.model import rates
from ojs_nats.model.lifecycle import State
from ojs_nats.service import leases, limits
from ojs_nats.service.apply import commit
from ojs_nats.service.context import Context
from ojs_nats.storage import ReadyEntry, RevisionConflict, Stored

#: An entry newer than its record is a transition still in flight: offer it again a little later.
#: After this long it is a leftover of a crash and is dropped.
IN_FLIGHT_GRACE_MS = 30_000
IN_FLIGHT_RETRY_MS = 50
#: An entry younger than this whose record is behind is waited for in place (see
#: `_in_flight_pause_ms`).
IN_FLIGHT_WAIT_MS = 20
MAX_CLAIM_ATTEMPTS = 5
#: How long a fetch waits, once per priority, for entries the stream has but the consumer has
#: not seen yet (replication lag inside a NATS cluster is a few milliseconds).
LAGGING_CONSUMER_WAIT_MS = 100
#: What `_claim` answers for a job its limits made wait (as opposed to a stale entry: None).
HELD_BACK = "held back"
#: Jobs one fetch may hold back per queue (and offer again later) before it gives up on it.
MAX_HELD_BACK = 64
#: Longest wait a long-polling fetch may ask for (ojs-security.md §8: a bounded poll, 30 s).
MAX_WAIT_MS = 30_000
#: How often a waiting fetch looks at its queues even when no new entry woke it.
LONG_POLL_RECHECK_MS = 500
#: Looks again soon after a wake that found nothing. The wake is a core NATS delivery of the
#: entry, which can reach us before the stream has stored it: a look at once then finds the
#: queue empty (~0.25% of wakes on an idle machine), and the job would wait for the recheck.
WOKEN_EARLY_RECHECKS_MS = (5, 50)


async def fetch(
    ctx: Context,
    queues: list[str],
    count: int,
    worker_id: str | None,
    visibility_ms: int | None,
    wait_ms: int = 0,
    gone: Callable[[], Awaitable[bool]] | None = None,
) -> list[dict[str, Any]]:
    """Claim up to `count` jobs. `wait_ms`: when there is none, wait up to this long for one
    (a long poll: ojs-worker-protocol.md §6.1 allows it) instead of answering empty at once.
    `gone`: whether the asker has left; a long poll claims nothing for a worker that is gone
    (it would hold the jobs until their visibility timeout)."""
    if wait_ms <= 0:
        return await _fetch_now(ctx, queues, count, worker_id, visibility_ms)
    deadline = ctx.clock() + wait_ms
    async with ctx.storage.ready.watch(queues) as published:
        first = True
        soon: tuple[int, ...] = ()  # quick looks left after a wake that found nothing
        while True:
            if not first and gone is not None and await gone():
                return []
            first = False
            woken = published.is_set()
            published.clear()  # an entry published while we look wakes the next wait at once
            claimed = await _fetch_now(ctx, queues, count, worker_id, visibility_ms)
            left = deadline - ctx.clock()
            if claimed or left <= 0 or ctx.draining:
                return claimed
            if woken:
                soon = WOKEN_EARLY_RECHECKS_MS
            pause_ms, soon = (soon[0], soon[1:]) if soon else (LONG_POLL_RECHECK_MS, ())
            # Woken by a new entry, or after a while in any case: an entry offered again
            # later (a NAK's delay, a limit's wait) publishes nothing.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(published.wait(), min(left, pause_ms) / 1000)


async def _fetch_now(
    ctx: Context, queues: list[str], count: int, worker_id: str | None, visibility_ms: int | None
) -> list[dict[str, Any]]:
    if ctx.draining:
        return []
    claimed: list[dict[str, Any]] = []
    for queue in queues:
        settings = ctx.storage.queues.settings(queue)
        if settings.get("paused"):
            continue
        counts = await ctx.storage.ready.counts(queue)
        if not counts:
            continue  # nothing to hand out: no need to touch the queue's limits either
        gate = await limits.open_gate(ctx, queue, count - len(claimed))
        if gate.allowed <= 0:
            continue
        try:
            await _from_queue(ctx, queue, counts, gate, claimed, worker_id, visibility_ms)
        finally:
            await limits.close_gate(ctx, gate)
        if len(claimed) >= count:
            break
    return claimed


async def _from_queue(
    ctx: Context,
    queue: str,
    counts: dict[int, int],
    gate: limits.Gate,
    claimed: list[dict[str, Any]],
    worker_id: str | None,
    visibility_ms: int | None,
) -> None:
    held = 0
    for priority in sorted(counts, reverse=True):
        wait_ms = LAGGING_CONSUMER_WAIT_MS
        while gate.remaining > 0:
            entries = await ctx.storage.ready.pull(queue, priority, gate.remaining)
            if not entries and wait_ms:
                # The stream counted entries, but on a cluster the consumer's leader can be the
                # replica that has not applied the newest ones yet: wait for them once rather
                # than report a queue with jobs in it as empty. One entry: a pull for more
                # answers only when it is full or expires, so an entry arriving meanwhile
                # would wait out the whole wait (S6's end-to-end p99 was ~100 ms from this).
                entries = await ctx.storage.ready.pull(queue, priority, 1, wait_ms)
            wait_ms = 0
            if not entries:
                break
            group = leases.LeaseGroup(ctx, len(entries))
            results = await asyncio.gather(
                *(_claim(ctx, e, worker_id, visibility_ms, gate, group) for e in entries)
            )
            got = [job for job in results if isinstance(job, dict)]
            gate.started += len(got)
            claimed.extend(got)
            held += results.count(HELD_BACK)
            if not got and held >= MAX_HELD_BACK:
                # Limits bind: the jobs examined had to wait. Stop rather than walk the whole
                # backlog of jobs waiting for the same limit (each was offered again later).
                return
        if gate.remaining <= 0:
            return


async def _claim(
    ctx: Context,
    entry: ReadyEntry,
    worker_id: str | None,
    visibility_ms: int | None,
    gate: limits.Gate,
    group: leases.LeaseGroup,
) -> dict[str, Any] | str | None:
    """Claim one entry's job; every path tells `group` whether it claims (see leases.py)."""
    joined = False

    async def covered(change: jobs.Change) -> bool:
        nonlocal joined
        if joined:
            return False  # a retried claim: the group was armed without it
        joined = True
        due = jobs.next_wake(change.record) or ctx.clock()
        return await group.join(entry.job_id, change.step, due)

    try:
        return await _claim_once(ctx, entry, worker_id, visibility_ms, gate, covered)
    finally:
        if not joined:
            await group.leave()


async def _claim_once(
    ctx: Context,
    entry: ReadyEntry,
    worker_id: str | None,
    visibility_ms: int | None,
    gate: limits.Gate,
    covered: Callable[[jobs.Change], Awaitable[bool]],
) -> dict[str, Any] | str | None:
    ready = ctx.storage.ready
    recent = _recent_copy(ctx, entry)
    for _ in range(MAX_CLAIM_ATTEMPTS):
        stored, recent = recent or await _read(ctx, entry), None
        record = stored.record if stored else None
        step = int(record["sys"]["step"]) if record else 0
        if record is None or record["job"]["state"] != State.AVAILABLE or step != entry.step:
            if step < entry.step and entry.age_ms < IN_FLIGHT_GRACE_MS:
                await ready.retry_later(entry, IN_FLIGHT_RETRY_MS)
            else:
                await ready.ack(entry)  # stale entry: the job moved on
            return None
        assert stored is not None
        now = ctx.clock()
        expired = jobs.on_wake(record, now)
        if expired is not None:  # expires_at passed before anyone started it
            try:
                await commit(ctx, expired, stored)
            except RevisionConflict:
                continue
            await ready.ack(entry)
            return None
        if await _workflow_cancelled(ctx, record):
            try:
                await commit(ctx, jobs.cancel(record, now), stored)
            except RevisionConflict:
                continue
            await ready.ack(entry)
            return None
        slots, wait_ms, own_limit = await _take_limits(ctx, record, gate)
        if wait_ms:
            return await _held_back(ctx, entry, stored, wait_ms, own_limit)
        visibility, timeout = _lease(ctx, record, visibility_ms)
        heartbeat = record["sys"].get("hb_ms") or ctx.settings.default_heartbeat_timeout_ms
        change = jobs.claim(
            record, now, worker_id, visibility, timeout, grouped=True, heartbeat_ms=heartbeat
        )
        change.record["sys"]["slots"] = limits.slot_records(slots) or None
        try:
            if not await covered(change):  # no shared lease timer: the job gets its own
                change = jobs.claim(
                    record, now, worker_id, visibility, timeout, heartbeat_ms=heartbeat
                )
                change.record["sys"]["slots"] = limits.slot_records(slots) or None
            await commit(ctx, change, stored)
        except RevisionConflict:
            await limits.free_all(ctx, slots)
            continue
        except BaseException:
            await limits.free_all(ctx, slots)
            raise
        await ready.ack(entry)
        return change.job
    await ready.retry_later(entry, IN_FLIGHT_RETRY_MS)
    return None


async def _read(ctx: Context, entry: ReadyEntry) -> Stored | None:
    """The entry's job record; a record behind a young entry is read again shortly."""
    waited_ms = 0
    while True:
        stored = await ctx.storage.jobs.get(entry.job_id)
        behind = stored is None or int(stored.record["sys"]["step"]) < entry.step
        pause_ms = _in_flight_pause_ms(entry.age_ms + waited_ms) if behind else 0
        if not pause_ms:
            return stored
        await asyncio.sleep(pause_ms / 1000)
        waited_ms += pause_ms


def _in_flight_pause_ms(age_ms: int) -> int:
    """How long to wait before reading again the record of an entry that is `age_ms` old and
    ahead of its record, or 0 to offer the entry again later instead.

    The writer publishes the entry, then writes the record one round trip later: a long poll
    woken by the entry usually reads a moment too soon. Offering it again costs the job
    `IN_FLIGHT_RETRY_MS` (S6's end-to-end p99 was ~55 ms from this); a few short reads do not.
    """
    if age_ms >= IN_FLIGHT_WAIT_MS:
        return 0
    return min(max(1, age_ms), IN_FLIGHT_WAIT_MS - age_ms)


def _recent_copy(ctx: Context, entry: ReadyEntry) -> Stored | None:
    """The entry's job as this process last wrote it, if that is the entry's available step.

    A job this process enqueued is usually still as it wrote it: it can be claimed without a
    read (the compare-and-set proves the copy current; if it is not, the next attempt reads).
    """
    recent = ctx.storage.jobs.recent(entry.job_id)
    if recent is None:
        return None
    record = recent.record
    if record["job"]["state"] != State.AVAILABLE or int(record["sys"]["step"]) != entry.step:
        return None
    return recent


async def _workflow_cancelled(ctx: Context, record: jobs.Record) -> bool:
    """Whether the job is a member of a cancelled workflow. A member enqueued while the cancel
    was landing is available until the advancing gateway takes it back (after its write to the
    workflow failed); a fetch in that window must not hand it out."""
    workflow_id = record["job"].get("workflow_id")
    if not workflow_id:
        return False
    stored = await ctx.storage.workflows.get(str(workflow_id))
    return stored is not None and stored.record["state"] == "cancelled"


def _lease(ctx: Context, record: jobs.Record, asked_ms: int | None) -> tuple[int, int | None]:
    """Visibility and execution timeout of a claim: the fetch's, the job's, the queue's
    (ojs-queue-config.md §7.3), or the server's default, in that order."""
    sys = record["sys"]
    config = ctx.storage.queues.settings(str(record["job"]["queue"])).get("config") or {}
    queue_vis, queue_timeout = config.get("visibility_timeout"), config.get("default_timeout")
    visibility = (
        asked_ms
        or sys.get("vis_ms")
        or (int(queue_vis) * 1000 if queue_vis else None)
        or ctx.settings.default_visibility_timeout_ms
    )
    timeout = (
        sys.get("timeout_ms")
        or (int(queue_timeout) * 1000 if queue_timeout else None)
        or ctx.settings.default_timeout_ms
        or None
    )
    return int(visibility), timeout


async def _take_limits(
    ctx: Context, record: jobs.Record, gate: limits.Gate
) -> tuple[list[limits.Slot], int, rates.JobLimit | None]:
    """The slots a claim needs (the queue's, then the job's own limit), or how long to wait
    (with the job's own limit when that is what held it back)."""
    job = record["job"]
    step = int(record["sys"]["step"]) + 1
    slots: list[limits.Slot] = []
    if gate.concurrency is not None:
        slot = await limits.take_slot(ctx, gate, str(job["id"]), step)
        if slot is None:
            return [], limits.SLOT_RETRY_MS, None
        slots.append(slot)
    own = rates.parse_job_limit(job.get("rate_limit"), str(job["queue"]))
    if own is not None:
        taken, wait_ms = await limits.admit_job(ctx, own, str(job["id"]), step)
        if wait_ms:
            await limits.free_all(ctx, slots)
            return [], wait_ms, own
        slots.extend(taken)
    return slots, 0, None


async def _held_back(
    ctx: Context,
    entry: ReadyEntry,
    stored: Stored,
    wait_ms: int,
    own: rates.JobLimit | None,
) -> str | None:
    """A job its limits do not let start now: offered again later, or dropped if it asks so."""
    if own is not None and own.on_limit == "drop":
        change = jobs.drop(stored.record, ctx.clock(), "rate_limited", "Dropped by its rate limit.")
        try:
            await commit(ctx, change, stored)
        except RevisionConflict:
            return None
        await ctx.storage.ready.ack(entry)
        return HELD_BACK
    # `wait` (and `reschedule`): the job stays available and is offered again when allowed.
    await ctx.storage.ready.retry_later(entry, wait_ms)
    return HELD_BACK
