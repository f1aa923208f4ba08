"""Rate and concurrency limits at FETCH (ojs-rate-limiting.md), shared by every replica through
`<NS>_LIMITS`: window limits as a GCRA arrival time updated by compare-and-set, concurrency as
slots (KV entries naming the occupying job) taken before a claim and freed when the job stops
being active (`releases.py`). A slot leaked by a crash is recognized from its holder's record.
"""

from __future__ import annotations

import asyncio
import dataclasses
import math
from collections.abc import Sequence
from typing import Any

from ojs_nats.model import queue_config, rates
from ojs_nats.model.lifecycle import State
from ojs_nats.service.context import Context
from ojs_nats.storage import RevisionConflict
from ojs_nats.storage.kv import Entry

#: A slot whose holder's claim is not written yet counts as taken this long (then: a leftover).
IN_FLIGHT_GRACE_MS = 30_000
#: A slot holder found active is trusted this long before its record is read again.
RECHECK_MS = 5_000
#: How long a job denied a concurrency slot waits before it is offered again.
SLOT_RETRY_MS = 200
MAX_CAS_ATTEMPTS = 10


def queue_partition(queue: str) -> str:
    return "q_" + queue.replace(".", "_")


@dataclasses.dataclass(slots=True)
class Slot:
    subject: str
    revision: int


@dataclasses.dataclass(slots=True)
class Gate:
    """How many jobs one fetch may start from a queue under the queue's own limits."""

    allowed: int
    partition: str = ""
    concurrency: int | None = None
    windows: list[tuple[rates.Rate, str]] = dataclasses.field(default_factory=list)
    free: list[Entry] = dataclasses.field(default_factory=list)
    started: int = 0

    @property
    def remaining(self) -> int:
        return self.allowed - self.started


async def open_gate(ctx: Context, queue: str, wanted: int) -> Gate:
    """Reserve up to `wanted` starts from `queue` (free slots and window budget)."""
    config = ctx.storage.queues.settings(queue).get("config") or {}
    concurrency = config.get("concurrency")
    windows = [
        (r, suffix)
        for r, suffix in ((queue_config.rate(config), ""), (queue_config.throttle(config), "-t"))
        if r is not None
    ]
    if concurrency is None and not windows:
        return Gate(wanted)
    partition = queue_partition(queue)
    gate = Gate(wanted, partition, concurrency)
    if concurrency is not None:
        gate.free = await free_slots(ctx, partition, concurrency, wanted)
        gate.allowed = len(gate.free)
    for rate, suffix in windows:
        if gate.allowed == 0:
            break
        granted, _ = await take(ctx, partition + suffix, rate, gate.allowed)
        if granted < gate.allowed:  # the tighter window decides: return the surplus of the others
            for earlier, earlier_part in gate.windows:
                await give_back(ctx, earlier_part, earlier, gate.allowed - granted)
        gate.windows.append((rate, partition + suffix))
        gate.allowed = granted
    return gate


async def close_gate(ctx: Context, gate: Gate) -> None:
    """Give back the window budget of starts reserved but not made."""
    unused = gate.allowed - gate.started
    if unused > 0:
        for rate, partition in gate.windows:
            await give_back(ctx, partition, rate, unused)


async def take_slot(ctx: Context, gate: Gate, job_id: str, step: int) -> Slot | None:
    """Occupy one of the gate's free slots for `job_id`'s claim at `step`."""
    while gate.free:
        entry = gate.free.pop(0)
        slot = await _occupy(ctx, entry, job_id, step)
        if slot is not None:
            return slot
    return None


async def admit_job(
    ctx: Context, limit: rates.JobLimit, job_id: str, step: int
) -> tuple[list[Slot], int]:
    """Apply a job's own `rate_limit`: (slots taken, 0) or ([], ms until it may try again)."""
    partition = limit.partition
    slots: list[Slot] = []
    if limit.concurrency is not None:
        free = await free_slots(ctx, partition, limit.concurrency, 1)
        slot = None
        for entry in free:
            slot = await _occupy(ctx, entry, job_id, step)
            if slot is not None:
                break
        if slot is None:
            return [], SLOT_RETRY_MS
        slots.append(slot)
    taken: list[tuple[rates.Rate, str]] = []
    for rate, suffix in ((limit.rate, ""), (limit.throttle, "-t")):
        if rate is None:
            continue
        granted, wait = await take(ctx, partition + suffix, rate, 1)
        if not granted:
            for earlier, earlier_part in taken:
                await give_back(ctx, earlier_part, earlier, 1)
            await free_all(ctx, slots)
            return [], max(wait, 1)
        taken.append((rate, partition + suffix))
    return slots, 0


async def free_all(ctx: Context, slots: Sequence[Slot]) -> None:
    for slot in slots:
        await ctx.storage.limits.free_slot(slot.subject, slot.revision)


def slot_records(slots: Sequence[Slot]) -> list[dict[str, Any]]:
    """How a claimed job remembers its slots (so leaving `active` frees exactly them)."""
    return [{"subject": s.subject, "rev": s.revision} for s in slots]


# ---------------------------------------------------------------- window budget


async def take(ctx: Context, partition: str, rate: rates.Rate, wanted: int) -> tuple[int, int]:
    """Up to `wanted` starts from a window limit: (granted, ms until the next would conform)."""
    store = ctx.storage.limits
    for _ in range(MAX_CAS_ATTEMPTS):
        now = ctx.clock()
        entry = await store.rate_state(partition)
        tat = float(entry.value["tat"]) if entry.value else None
        grant = rates.take(rate, tat, now, wanted)
        if grant.granted == 0:
            return 0, grant.wait_ms
        try:
            await store.set_rate_state(partition, grant.tat, entry.revision, _ttl_s(rate))
        except RevisionConflict:
            continue
        return grant.granted, 0
    return 0, SLOT_RETRY_MS


async def give_back(ctx: Context, partition: str, rate: rates.Rate, count: int) -> None:
    """Return unused starts to a window limit (best effort: losing one only under-delivers)."""
    if count <= 0:
        return
    store = ctx.storage.limits
    for _ in range(3):
        entry = await store.rate_state(partition)
        if entry.value is None:
            return
        tat = rates.refund(rate, float(entry.value["tat"]), count, ctx.clock())
        try:
            await store.set_rate_state(partition, tat, entry.revision, _ttl_s(rate))
            return
        except RevisionConflict:
            continue


def _ttl_s(rate: rates.Rate) -> int:
    # Once idle for two periods the arrival time lies in the past, the same as no entry at all.
    return math.ceil(2 * rate.period_ms / 1000) + 1


# ---------------------------------------------------------------- concurrency slots


async def free_slots(ctx: Context, partition: str, limit: int, wanted: int) -> list[Entry]:
    """Up to `wanted` slots that are free, or held by a job that is no longer active there."""
    slots = await ctx.storage.limits.slots(partition, limit)
    free = [entry for entry in slots.values() if entry.value is None]
    if len(free) >= wanted:
        return free[:wanted]
    # All taken: find the ones whose holder stopped being active without freeing them (a crash).
    held = [entry for entry in slots.values() if entry.value is not None]
    stale = await asyncio.gather(*(_stale(ctx, entry) for entry in held))
    free += [entry for entry, is_stale in zip(held, stale, strict=True) if is_stale]
    return free[:wanted]


async def _occupy(ctx: Context, entry: Entry, job_id: str, step: int) -> Slot | None:
    holder = {"job": job_id, "step": step, "at": ctx.clock()}
    try:
        revision = await ctx.storage.limits.take_slot(entry.subject, holder, entry.revision)
    except RevisionConflict:
        return None  # another fetch took it first
    return Slot(entry.subject, revision)


async def _stale(ctx: Context, entry: Entry) -> bool:
    """Whether a slot's holder stopped being active at the step it took the slot for."""
    assert entry.value is not None
    now = ctx.clock()
    mark = f"{entry.subject}@{entry.revision}"
    if ctx.verified.get(mark, 0) > now - RECHECK_MS:
        return False
    holder = entry.value
    stored = await ctx.storage.jobs.get(str(holder["job"]))
    step = int(holder.get("step", 0))
    recent = now - int(holder.get("at", 0)) < IN_FLIGHT_GRACE_MS
    if stored is None:
        return not recent
    current = int(stored.record["sys"]["step"])
    if current < step:
        return not recent  # its claim is still being written
    if current > step or stored.record["job"]["state"] != State.ACTIVE:
        return True
    if len(ctx.verified) > 10_000:
        ctx.verified.clear()
    ctx.verified[mark] = now
    return False
