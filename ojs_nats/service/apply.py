"""Writing one job transition to JetStream, in the order that keeps invariant 1.

Order of writes for a `Change`:
  1. the ready entry (if the job becomes available) and the timer (if one is needed) — together;
  2. the record, by compare-and-set (this is the moment the transition happens);
  3. events, counters, the dead-letter index, disarming the previous step's timer, deleting a
     ready entry that no longer applies, and what the job gives back (its concurrency slots
     when it stops being active, its uniqueness lock when it finishes; `releases.py`) — together.
A crash after 1 leaves a ready entry or timer for a step the record never reached: fetchers and
the timer runner recognise the step and drop it. A crash after 2 loses at most an event or a
counter tick; the job itself is consistent and still has its entry and timer.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from ojs_nats.errors import ConflictError, NotFoundError, OjsError
from ojs_nats.model import ids
from ojs_nats.model import job as jobs
from ojs_nats.model.lifecycle import State
from ojs_nats.service import dead_retention, queue_config, releases
from ojs_nats.service.context import Context
from ojs_nats.storage import RevisionConflict, Stored

#: Compare-and-set attempts before giving up on a hot record.
MAX_CAS_ATTEMPTS = 8
TIMER_KIND = "job"
FINISHED_KIND = "finished"


async def commit(
    ctx: Context, change: jobs.Change, stored: Stored | None, timer_fired: bool = False
) -> int:
    """Apply `change` over `stored` (None: create). Raises `RevisionConflict` if it lost.

    `timer_fired`: the change is made by the job's own timer, which has fired, so there is no
    pending timer of the previous step to disarm.
    """
    st = ctx.storage
    record = change.record
    job, sys = record["job"], record["sys"]
    first: list[Awaitable[Any]] = []
    if change.ready:
        first.append(_publish_ready(ctx, record))
    if change.wake_at is not None:
        first.append(st.timers.arm(TIMER_KIND, jobs.timer_key(record), change.wake_at))
    if change.finished and sys.get("on_finish"):
        # The followers run from a timer armed before the job finishes: durable, at once.
        first.append(st.timers.arm(FINISHED_KIND, jobs.timer_key(record), ctx.clock()))
    if len(first) == 1:
        await first[0]
    elif first:
        await asyncio.gather(*first)
    ttl = _retention(ctx, change)
    try:
        if stored is None:
            revision = await st.jobs.create(job["id"], record, ttl)
        else:
            revision = await st.jobs.update(job["id"], record, stored.revision, ttl)
    except RevisionConflict:
        if stored is None and change.ready and sys.get("ready_seq"):
            await st.ready.delete(int(sys["ready_seq"]))  # the id was taken: undo our entry
        raise
    work = _follow_ups(ctx, change, stored.record if stored else None, timer_fired)
    if len(work) == 1:
        await work[0]  # the usual case: no task for it
    else:
        await asyncio.gather(*work)
    return revision


async def commit_promotions(ctx: Context, items: list[tuple[jobs.Change, Stored]]) -> bool:
    """Apply several timer-made changes that only make jobs available (no timer to arm, nothing
    finished), with the order of `commit` for all of them at once: the ready entries in one
    atomic batch, then the records in one atomic batch of compare-and-sets (all or none), then
    the follow-ups. False when a record had moved on: no record was written then, and the
    entries already published name a step no record reached, which fetchers treat as a crash's
    leftovers (as after a crash between 1 and 2).
    """
    st = ctx.storage
    assert all(c.ready and c.wake_at is None and not c.finished for c, _ in items)
    jobs_ = [change.record["job"] for change, _ in items]
    for queue, priority in {(str(j["queue"]), int(j.get("priority", 0))) for j in jobs_}:
        await st.ready.ensure_consumer(queue, priority)
    # Always atomic batches here, however few: while timers fire in thousands the gateway is
    # the busier side, and pipelining small promotions measured worse (docs/architecture.md).
    sequences = await st.bulk.ready_entries(
        [
            (str(job["queue"]), int(job.get("priority", 0)), str(job["id"]), change.step)
            for job, (change, _) in zip(jobs_, items, strict=True)
        ],
        batched=True,
    )
    for (change, _), seq in zip(items, sequences, strict=True):
        change.record["sys"]["ready_seq"] = seq
    try:
        await st.bulk.records(
            [
                (str(change.record["job"]["id"]), change.record, stored.revision)
                for change, stored in items
            ]
        )
    except RevisionConflict:
        return False
    await asyncio.gather(
        *(
            work
            for change, stored in items
            for work in _follow_ups(ctx, change, stored.record, True)
        )
    )
    return True


async def transition(
    ctx: Context, job_id: str, make: Callable[[jobs.Record, int], jobs.Change]
) -> jobs.Change:
    """Read, transition and compare-and-set, re-reading when another writer got there first.

    Raises:
        NotFoundError: no such job.
        ConflictError: the transition is not legal in the job's current state.
    """
    recent = ctx.storage.jobs.recent(job_id)
    if recent is not None:
        # What this process last wrote is usually still the record: try it without a read.
        # The compare-and-set proves it; a stale copy (or one that refuses the transition)
        # falls through to reading the record.
        try:
            change: jobs.Change | None = make(recent.record, ctx.clock())
        except OjsError:
            change = None
        # Only a change with nothing to write before its compare-and-set: a stale copy's ready
        # entry or timer would be written for a step another transition may have reached.
        if change is not None and not _writes_first(change):
            try:
                await commit(ctx, change, recent)
            except RevisionConflict:
                pass
            else:
                return change
    for _ in range(MAX_CAS_ATTEMPTS):
        stored = await ctx.storage.jobs.get(job_id)
        if stored is None:
            raise NotFoundError(
                f"Job '{job_id}' not found.", resource_type="job", resource_id=job_id
            )
        change = make(stored.record, ctx.clock())
        try:
            await commit(ctx, change, stored)
        except RevisionConflict:
            continue
        return change
    raise ConflictError(
        f"Job {job_id} is being changed concurrently; retry the request.", job_id=job_id
    )


def _writes_first(change: jobs.Change) -> bool:
    """Whether `commit` writes anything before the compare-and-set for `change`."""
    return bool(
        change.ready
        or change.wake_at is not None
        or (change.finished and change.record["sys"].get("on_finish"))
    )


async def _publish_ready(ctx: Context, record: jobs.Record) -> None:
    job = record["job"]
    record["sys"]["ready_seq"] = await ctx.storage.ready.publish(
        job["queue"], int(job.get("priority", 0)), job["id"], int(record["sys"]["step"])
    )


def _retention(ctx: Context, change: jobs.Change) -> int | None:
    if not change.finished:
        return None
    queue = str(change.record["job"]["queue"])
    return queue_config.retention_s(
        ctx, queue, change.after, bool(change.record["sys"].get("dead"))
    )


def _follow_ups(
    ctx: Context, change: jobs.Change, previous: jobs.Record | None, timer_fired: bool
) -> list[Awaitable[Any]]:
    st = ctx.storage
    job = change.record["job"]
    queue, job_id = str(job["queue"]), str(job["id"])
    deltas = {str(change.after): 1}
    if change.before is not None:
        deltas[str(change.before)] = deltas.get(str(change.before), 0) - 1
    events = [event_envelope(ctx, change, e) for e in change.events]
    work: list[Awaitable[Any]] = [
        st.follow_ups.write(queue, events, deltas, releases.tick(change), ctx.clock())
    ]
    if change.dead_letter is True:
        work.append(_dead_letter(ctx, queue, job_id))
    elif change.dead_letter is False:
        work.append(st.dead.remove(queue, job_id))
    if previous is not None and change.step != int(previous["sys"]["step"]):
        if jobs.own_timer(previous) is not None and not timer_fired:
            work.append(st.timers.disarm(TIMER_KIND, jobs.timer_key(previous)))
        seq = previous["sys"].get("ready_seq")
        if change.before == State.AVAILABLE and change.after != State.ACTIVE and seq:
            work.append(st.ready.delete(int(seq)))
    work += releases.follow_ups(ctx, change, previous, _retention(ctx, change))
    return work


async def _dead_letter(ctx: Context, queue: str, job_id: str) -> None:
    """Index a dead-lettered job, then hold the queue to its count limit (best effort: the
    transition is already written, and the next dead-lettering prunes what this one did not)."""
    ttl = queue_config.retention_s(ctx, queue, None, True)
    await dead_retention.enforce_quietly(ctx, await ctx.storage.dead.add(queue, job_id, ttl))


def event_envelope(ctx: Context, change: jobs.Change, event: jobs.Event) -> dict[str, Any]:
    """An OJS event (ojs-events.md §2) for one lifecycle event of a job."""
    job = change.record["job"]
    data = {
        "job_id": job["id"],
        "job_type": job["type"],
        "queue": job["queue"],
        "state": str(change.after),
    }
    if event.data:
        data.update({k: v for k, v in event.data.items() if v is not None})
    return event_at(ctx, event.type, job["id"], data)


def event_at(ctx: Context, kind: str, subject: str, data: dict[str, Any]) -> dict[str, Any]:
    """An OJS event envelope stamped now, from this process."""
    now = ctx.clock()
    return {
        "specversion": "1.0",
        "id": "evt_" + ids.uuid7(now),
        "type": kind,
        "source": ctx.source,
        "time": ids.format_ts(now),
        "subject": subject,
        "datacontenttype": "application/json",
        "data": data,
    }
