"""Queue statistics (ojs-http-binding.md §11.2): counts by state, depth, throughput, limits.

Everything comes from counters and stream/consumer state, never from reading jobs: the per-state
counters, the per-minute throughput counters, the ready index's entries per priority and, for a
concurrency-limited queue, its occupied slots.
"""

from __future__ import annotations

import asyncio
from typing import Any

from ojs_nats.errors import NotFoundError
from ojs_nats.model import ids, queue_config
from ojs_nats.model.lifecycle import State
from ojs_nats.service import limits
from ojs_nats.service.context import Context

MINUTE_MS = 60_000
#: Throughput per second is averaged over this many minutes (the current one included).
RATE_MINUTES = 5
#: States that count towards a queue's depth (ojs-backpressure.md §3: waiting, not running).
DEPTH_STATES = (State.AVAILABLE, State.SCHEDULED, State.RETRYABLE, State.PENDING)


async def queue_stats(ctx: Context, queue: str) -> dict[str, Any]:
    st = ctx.storage
    settings = st.queues.settings(queue)
    config = settings.get("config") or {}
    concurrency = config.get("concurrency")
    counters, minutes, ready, slots = await asyncio.gather(
        st.counters.read(queue),
        st.throughput.read(queue),
        st.ready.counts(queue),
        st.limits.slots(limits.queue_partition(queue), concurrency)
        if concurrency is not None
        else _nothing(),
    )
    if queue not in counters and not settings:
        raise NotFoundError(f"Queue '{queue}' not found.", resource_type="queue", resource_id=queue)
    counts = counters.get(queue) or {}
    paused = bool(settings.get("paused"))
    body: dict[str, Any] = {"name": queue, "status": "paused" if paused else "active"}
    body["paused"] = paused
    body.update({str(state): int(counts.get(str(state), 0)) for state in State})
    body["depth"] = sum(int(counts.get(str(s), 0)) for s in DEPTH_STATES)
    body["ready_by_priority"] = {str(p): n for p, n in sorted(ready.items(), reverse=True)}
    body.update(_throughput(minutes, ctx.clock()))
    body["limits"] = _limits(config, slots)
    bound = (config.get("backpressure") or {}).get("max_depth")
    if bound:
        body["backpressure"] = {
            **config["backpressure"],
            "pressure": round(min(1.0, body["depth"] / bound), 4),
        }
    return {"queue": body, "computed_at": ids.format_ts(ctx.clock())}


async def _nothing() -> dict[int, Any]:
    return {}


def _throughput(minutes: dict[str, Any], now: int) -> dict[str, Any]:
    current = now // MINUTE_MS
    done, failed = minutes.get("completed") or {}, minutes.get("failed") or {}

    def since(counter: dict[int, int], first: int) -> int:
        return sum(n for minute, n in counter.items() if minute >= first)

    window_s = (now - (current - RATE_MINUTES + 1) * MINUTE_MS) / 1000
    return {
        "completed_last_minute": since(done, current),
        "failed_last_minute": since(failed, current),
        "completed_last_hour": since(done, current - 59),
        "failed_last_hour": since(failed, current - 59),
        "throughput_per_second": round(since(done, current - RATE_MINUTES + 1) / window_s, 3),
    }


def _limits(config: dict[str, Any], slots: dict[int, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if config.get("concurrency") is not None:
        used = sum(1 for entry in slots.values() if entry.value is not None)
        out["concurrency"] = {"limit": config["concurrency"], "active": used}
    for name, rate in (
        ("rate", queue_config.rate(config)),
        ("throttle", queue_config.throttle(config)),
    ):
        if rate is not None:
            out[name] = rate.to_wire()
    return out
