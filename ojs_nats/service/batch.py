"""Batch enqueue (ojs-http-binding.md §9.2, ojs-bulk-operations.md §5): up to `MAX_BATCH` jobs,
all or nothing (or, in bulk `partial` mode, each valid job on its own). Write order: validate
everything, claim uniqueness keys, then timers and ready entries, then ALL records as one atomic
batch (the commit: every job exists afterwards or none), then counters and events. The crash
analysis of each step is in docs/architecture.md ("Batch enqueue").
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections import Counter, defaultdict
from collections.abc import Mapping
from typing import Any

import orjson

from ojs_nats.errors import (
    BatchTooLargeError,
    DuplicateError,
    InvalidRequestError,
    OjsError,
    PayloadTooLargeError,
)
from ojs_nats.model import envelope, ids
from ojs_nats.model import job as jobs
from ojs_nats.model.envelope import Submission
from ojs_nats.model.schemas import Catalog
from ojs_nats.service import backpressure, queue_config, schemas, unique
from ojs_nats.service.apply import TIMER_KIND, event_envelope
from ojs_nats.service.context import Context
from ojs_nats.storage import RevisionConflict
from ojs_nats.storage.atomic import MAX_ATOMIC

#: Most jobs per request: the records must fit one atomic batch.
MAX_BATCH = MAX_ATOMIC


@dataclasses.dataclass(slots=True)
class Item:
    """One job of a batch, from validation to its outcome."""

    index: int
    submission: Submission | None = None
    #: The client chose the job's id (it may collide with an existing job).
    chosen_id: bool = False
    error: OjsError | None = None
    change: jobs.Change | None = None
    lock: dict[str, Any] | None = None
    #: The existing job a unique `ignore` policy answered with (nothing created).
    existing: dict[str, Any] | None = None
    #: An earlier job of the same batch with the same uniqueness key (`ignore`: answer with it).
    same_as: Item | None = None

    @property
    def created(self) -> bool:
        return self.change is not None

    @property
    def job(self) -> dict[str, Any]:
        if self.change is not None:
            return self.change.job
        if self.same_as is not None:
            return self.same_as.job
        return dict(self.existing or {})


class Rejected(Exception):
    """An all-or-nothing batch was refused; `items` carry the errors (nothing was written)."""

    def __init__(self, items: list[Item]) -> None:
        super().__init__("batch rejected")
        self.items = items

    @property
    def first(self) -> OjsError:
        return next(i.error for i in self.items if i.error is not None)


def items_of(body: Mapping[str, Any]) -> list[Any]:
    """The request's `jobs` array, checked for shape and size."""
    raw = body.get("jobs")
    if not isinstance(raw, list) or not raw:
        raise InvalidRequestError("The 'jobs' field must be a non-empty array.", field="jobs")
    if len(raw) > MAX_BATCH:
        raise BatchTooLargeError(
            f"Batch size {len(raw)} exceeds the maximum of {MAX_BATCH}.",
            max_batch_size=MAX_BATCH,
            batch_size=len(raw),
        )
    return raw


async def push_batch(
    ctx: Context, raw: list[Any], block_timeout_s: float = 0.0, atomic: bool = True
) -> list[Item]:
    """Enqueue the jobs; with `atomic`, any failing job fails the whole batch.

    Raises:
        Rejected: (atomic) the jobs, the failing ones with their errors (details name the index).
        OjsError: a failure of the batch as a whole (a queue's depth bound, storage).
    """
    now = ctx.clock()
    items = _validate(ctx, raw, now, await schemas.catalog(ctx))
    if atomic:
        _raise_first(items)
    todo = [i for i in items if i.error is None]
    rooms = await _rooms(ctx, todo, block_timeout_s, atomic)
    todo = [i for i in todo if i.error is None]
    await _admit(ctx, todo, now, atomic)
    create = [i for i in todo if i.error is None and i.existing is None and i.same_as is None]
    if create:
        await _drop(ctx, rooms)
        await _write(ctx, create, now)
    return items


def _validate(ctx: Context, raw: list[Any], now: int, known: Catalog) -> list[Item]:
    items: list[Item] = []
    seen: set[str] = set()
    retry = queue_config.default_retry(ctx)
    limit = ctx.settings.max_body_bytes
    for index, body in enumerate(raw):
        item = Item(index, chosen_id=isinstance(body, Mapping) and body.get("id") is not None)
        try:
            if len(orjson.dumps(body)) > limit:
                raise PayloadTooLargeError(f"The job exceeds {limit} bytes.", limit_bytes=limit)
            item.submission = envelope.parse_submission(body, now, queue_retry=retry)
            unique.key_of(item.submission)
            schemas.check(known, item.submission)
            if item.submission.id in seen:
                raise InvalidRequestError(
                    f"The id '{item.submission.id}' appears twice in the batch.", field="id"
                )
            seen.add(item.submission.id)
        except OjsError as exc:
            item.error = _at(index, exc)
        items.append(item)
    return items


async def _rooms(
    ctx: Context, items: list[Item], block_timeout_s: float, atomic: bool
) -> dict[str, backpressure.Room]:
    """Each queue's depth bound, for all of the batch's jobs in it (§9.3: whole batch or none)."""
    per_queue: dict[str, list[Item]] = defaultdict(list)
    for item in items:
        assert item.submission is not None
        per_queue[item.submission.queue].append(item)
    rooms: dict[str, backpressure.Room] = {}
    for queue, members in per_queue.items():
        try:
            rooms[queue] = await backpressure.make_room(ctx, queue, len(members), block_timeout_s)
        except OjsError as exc:
            if atomic:
                raise
            for item in members:
                item.error = _at(item.index, exc)
    return rooms


async def _admit(ctx: Context, items: list[Item], now: int, atomic: bool) -> None:
    """Claim the uniqueness keys; a key twice in one batch resolves against the first job."""
    first_with_key: dict[str, Item] = {}
    claims: list[Item] = []
    for item in items:
        assert item.submission is not None
        found = unique.key_of(item.submission)
        if found is None:
            continue
        policy, key = found
        earlier = first_with_key.get(key)
        if earlier is None:
            first_with_key[key] = item
            claims.append(item)
        elif policy.on_conflict == "ignore":
            item.same_as = earlier
        else:
            item.error = DuplicateError(
                f"Batch job at index {item.index} has the same uniqueness key as the job at "
                f"index {earlier.index}.",
                index=item.index,
                uniqueness_key=key,
            )
    results = await asyncio.gather(
        *(unique.admit(ctx, i.submission, now) for i in claims if i.submission is not None),
        return_exceptions=True,
    )
    for item, result in zip(claims, results, strict=True):
        if isinstance(result, OjsError):
            item.error = _at(item.index, result)
        elif isinstance(result, BaseException):
            await _release_all(ctx, claims)
            raise result
        elif result.existing is not None:
            item.existing = result.existing
        else:
            item.submission, item.lock = result.submission, result.lock
    if atomic and any(i.error for i in items):
        await _release_all(ctx, claims)
        _raise_first(items)


async def _drop(ctx: Context, rooms: Mapping[str, backpressure.Room]) -> None:
    for queue, room in rooms.items():
        if room.drop:
            await backpressure.drop_oldest(ctx, queue, room.drop)


async def _write(ctx: Context, items: list[Item], now: int) -> None:
    st = ctx.storage
    for item in items:
        assert item.submission is not None
        item.change = jobs.new_record(item.submission, now)
        if item.lock is not None:
            item.change.record["sys"]["unique"] = item.lock
    changes = [i.change for i in items if i.change is not None]
    queues = {str(c.record["job"]["queue"]) for c in changes}
    await asyncio.gather(*(st.queues.register(q, ids.format_ts(now)) for q in queues))
    expected = await _expected_revisions(ctx, items)
    await asyncio.gather(_ready_entries(ctx, changes), _timers(ctx, changes))
    try:
        await st.bulk.records(
            [
                (str(c.record["job"]["id"]), c.record, expected.get(str(c.record["job"]["id"]), 0))
                for c in changes
            ]
        )
    except RevisionConflict as exc:
        # Nothing was written: take back what step 1 left (best effort) and the keys.
        seqs = [c.record["sys"].get("ready_seq") for c in changes]
        await asyncio.gather(*(st.ready.delete(int(s)) for s in seqs if s))
        await _release_all(ctx, items)
        raise DuplicateError(
            "A job id of the batch is already taken; nothing was enqueued."
        ) from exc
    await _follow_ups(ctx, changes)


async def _expected_revisions(ctx: Context, items: list[Item]) -> dict[str, int]:
    """Ids the client chose may name an expired record's marker (expect it); a live record
    with such an id fails the batch before anything is written."""
    chosen = [(i, i.submission.id) for i in items if i.submission is not None and i.chosen_id]
    entries = await asyncio.gather(*(ctx.storage.jobs.entry(job_id) for _, job_id in chosen))
    expected: dict[str, int] = {}
    for (item, job_id), entry in zip(chosen, entries, strict=True):
        if entry.value is not None:
            await _release_all(ctx, items)
            raise _at(
                item.index,
                DuplicateError(f"A job with id '{job_id}' already exists.", existing_job_id=job_id),
            )
        expected[job_id] = entry.revision
    return expected


async def _ready_entries(ctx: Context, changes: list[jobs.Change]) -> None:
    ready = [c for c in changes if c.ready]
    if not ready:
        return
    pairs = {
        (str(c.record["job"]["queue"]), int(c.record["job"].get("priority", 0))) for c in ready
    }
    await asyncio.gather(*(ctx.storage.ready.ensure_consumer(q, p) for q, p in pairs))
    entries = [
        (
            str(c.record["job"]["queue"]),
            int(c.record["job"].get("priority", 0)),
            str(c.record["job"]["id"]),
            c.step,
        )
        for c in ready
    ]
    for change, seq in zip(ready, await ctx.storage.bulk.ready_entries(entries), strict=True):
        change.record["sys"]["ready_seq"] = seq


async def _timers(ctx: Context, changes: list[jobs.Change]) -> None:
    await asyncio.gather(
        *(
            ctx.storage.timers.arm(TIMER_KIND, jobs.timer_key(c.record), c.wake_at)
            for c in changes
            if c.wake_at is not None
        )
    )


async def _follow_ups(ctx: Context, changes: list[jobs.Change]) -> None:
    counts: dict[str, Counter[str]] = defaultdict(Counter)
    events = []
    for change in changes:
        queue = str(change.record["job"]["queue"])
        counts[queue][str(change.after)] += 1
        events += [(queue, event_envelope(ctx, change, e)) for e in change.events]
    await asyncio.gather(
        ctx.storage.bulk.events(events),
        *(ctx.storage.counters.add(queue, deltas) for queue, deltas in counts.items()),
    )


async def _release_all(ctx: Context, items: list[Item]) -> None:
    await asyncio.gather(*(unique.release(ctx, i.lock) for i in items if i.lock is not None))
    for item in items:
        item.lock = None


def _raise_first(items: list[Item]) -> None:
    if any(item.error is not None for item in items):
        raise Rejected(items)


def _at(index: int, exc: OjsError) -> OjsError:
    """The same error, its message and details naming the batch index."""
    if exc.details.get("index") == index:
        return exc
    error = type(exc)(f"Batch validation failed: job at index {index}: {exc.message}")
    error.details = {"index": index, **exc.details}
    return error
