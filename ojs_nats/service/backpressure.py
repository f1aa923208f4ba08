"""Backpressure (ojs-backpressure.md): a queue's depth bound, enforced at enqueue.

Depth (available + scheduled + retryable + pending) comes from the counters. `reject` answers 429
`QUEUE_FULL`, `block` waits up to `OJS-Block-Timeout` for room, `drop_oldest` discards the oldest
available jobs. Racing enqueues may overshoot the bound by those in flight (a brake, not a lock).
"""

from __future__ import annotations

import asyncio
import dataclasses
import math
from collections.abc import Mapping

from ojs_nats.errors import InvalidRequestError, QueueFullError
from ojs_nats.model import job as jobs
from ojs_nats.model.lifecycle import State
from ojs_nats.service import queue_config
from ojs_nats.service.apply import commit
from ojs_nats.service.context import Context
from ojs_nats.service.stats import DEPTH_STATES
from ojs_nats.storage import RevisionConflict

BLOCK_POLL_S = 0.1
#: Longest an enqueue may wait for room (well inside any HTTP client's timeout).
MAX_BLOCK_S = 60
#: Suggested wait before retrying a rejected enqueue.
RETRY_AFTER_S = 1
#: Ready entries examined per dropped job at most (stale ones are skipped).
DROP_SCAN = 64


@dataclasses.dataclass(frozen=True, slots=True)
class Room:
    depth: int = 0
    bound: int | None = None
    #: Jobs to drop before the new ones are written (drop_oldest).
    drop: int = 0
    warning_threshold: float = 0.8

    def headers(self) -> dict[str, str]:
        """Warning headers for a successful enqueue above the warning threshold (§7.3)."""
        if not self.bound or self.depth < self.bound * self.warning_threshold:
            return {}
        return {
            "X-OJS-Queue-Depth": str(self.depth),
            "X-OJS-Queue-Bound": str(self.bound),
            "X-OJS-Queue-Pressure": f"{min(1.0, self.depth / self.bound):.2f}",
        }


async def depth(ctx: Context, queue: str) -> int:
    counts: Mapping[str, int] = (await ctx.storage.counters.read(queue)).get(queue) or {}
    return sum(int(counts.get(str(s), 0)) for s in DEPTH_STATES)


async def make_room(ctx: Context, queue: str, adding: int, block_timeout_s: float) -> Room:
    """Check the bound for `adding` new jobs; raises `QueueFullError` if they may not enter."""
    policy = (ctx.storage.queues.settings(queue).get("config") or {}).get("backpressure")
    if not policy or not policy.get("max_depth"):
        return Room()
    bound, strategy = int(policy["max_depth"]), str(policy["strategy"])
    threshold = float(policy.get("warning_threshold", 0.8))
    deadline = asyncio.get_running_loop().time() + block_timeout_s
    while True:
        current = await depth(ctx, queue)
        if current + adding <= bound:
            return Room(current, bound, 0, threshold)
        if strategy == "drop_oldest" and adding <= bound:
            return Room(current, bound, current + adding - bound, threshold)
        if strategy != "block" or asyncio.get_running_loop().time() >= deadline:
            await _emit_rejected(ctx, queue, current, bound)
            raise _full(queue, current, bound, strategy)
        await asyncio.sleep(BLOCK_POLL_S)


async def drop_oldest(ctx: Context, queue: str, count: int) -> int:
    """Discard up to `count` of the queue's oldest available jobs; returns how many."""
    dropped, cursor = 0, 0
    while dropped < count:
        entries = await ctx.storage.ready.oldest(queue, cursor, DROP_SCAN)
        if not entries:
            break
        for job_id, step, seq in entries:
            cursor = seq
            if await _drop_one(ctx, job_id, step):
                dropped += 1
                if dropped >= count:
                    break
    return dropped


async def _drop_one(ctx: Context, job_id: str, step: int) -> bool:
    stored = await ctx.storage.jobs.get(job_id)
    if stored is None:
        return False
    record = stored.record
    if record["job"]["state"] != State.AVAILABLE or int(record["sys"]["step"]) != step:
        return False  # stale entry
    change = jobs.drop(record, ctx.clock(), "overflow", "Dropped to make room (drop_oldest).")
    try:
        await commit(ctx, change, stored)
    except RevisionConflict:
        return False  # claimed or changed meanwhile: not the oldest available any more
    data = {"job_id": job_id, "job_type": record["job"]["type"]}
    await queue_config.emit(ctx, str(record["job"]["queue"]), "backpressure.dropped", data)
    return True


def _full(queue: str, current: int, bound: int, strategy: str) -> QueueFullError:
    return QueueFullError(
        f"Queue '{queue}' has reached its depth bound ({bound}).",
        queue=queue,
        depth=current,
        bound=bound,
        strategy=strategy,
        retry_after_s=RETRY_AFTER_S,
    )


async def _emit_rejected(ctx: Context, queue: str, current: int, bound: int) -> None:
    await queue_config.emit(ctx, queue, "backpressure.rejected", {"depth": current, "bound": bound})


def block_timeout_s(header: str | None) -> float:
    """The `OJS-Block-Timeout` request header: seconds to wait for room (absent: 0).

    Raises:
        InvalidRequestError: not a number from 0 to `MAX_BLOCK_S`.
    """
    if header is None or header.strip() == "":
        return 0.0
    try:
        value = float(header)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or not 0 <= value <= MAX_BLOCK_S:
        raise InvalidRequestError(
            f"OJS-Block-Timeout must be a number of seconds from 0 to {MAX_BLOCK_S}.",
            field="OJS-Block-Timeout",
        )
    return value
