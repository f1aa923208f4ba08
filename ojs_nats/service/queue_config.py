"""Queue settings (ojs-queue-config.md, ojs-admin-api.md §6): pause/resume, the configuration
document, explicit creation and deletion, and the per-queue defaults other use cases read. The
settings live in the queue's `<NS>_QUEUES` entry (changed by compare-and-set, mirrored into every
replica by a KV watch) and apply to what happens next, never retroactively.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from ojs_nats.errors import ConflictError, NotFoundError, UnsupportedError
from ojs_nats.model import ids, queue_config
from ojs_nats.model.lifecycle import NON_TERMINAL, State
from ojs_nats.model.retry import RetryPolicy
from ojs_nats.service.context import Context
from ojs_nats.storage import RevisionConflict

MAX_CAS_ATTEMPTS = 8


def config(ctx: Context, queue: str) -> dict[str, Any]:
    """The queue's stored configuration (normalized; empty when never configured)."""
    return dict(ctx.storage.queues.settings(queue).get("config") or {})


def retention_s(ctx: Context, queue: str, state: State | None, dead: bool) -> int | None:
    """How long a finished job of `queue` stays readable (None: forever)."""
    cfg = config(ctx, queue)
    if dead:
        ttl = cfg.get("dead_letter_ttl")
        seconds = queue_config.duration_s(ttl) if ttl else ctx.settings.dead_letter_retention_s
        return seconds or None
    per_state = (cfg.get("retention") or {}).get(str(state)) if state is not None else None
    seconds = queue_config.duration_s(per_state) if per_state else ctx.settings.finished_retention_s
    return seconds or None


def default_retry(ctx: Context) -> Callable[[str], RetryPolicy | None]:
    """Looks up a queue's default retry policy (for jobs that bring none of their own)."""

    def lookup(queue: str) -> RetryPolicy | None:
        return queue_config.default_retry(config(ctx, queue))

    return lookup


async def set_paused(ctx: Context, queue: str, paused: bool) -> dict[str, Any]:
    """Pause or resume; emits `queue.paused` / `queue.resumed` when the state changes."""
    return await _change(ctx, queue, {"paused": paused})


async def update(ctx: Context, queue: str, body: Mapping[str, Any]) -> dict[str, Any]:
    """Apply a configuration update (fields present are set; `null` resets to the default)."""
    return await _change(ctx, queue, queue_config.parse_update(body))


async def create(ctx: Context, queue: str, body: Mapping[str, Any]) -> dict[str, Any]:
    """Explicit creation (queue-config §5.2); 409 if the queue exists already."""
    update = queue_config.parse_update(body)
    now = ids.format_ts(ctx.clock())
    entry = await ctx.storage.queues.entry(queue)
    if entry.value is not None:
        raise ConflictError(f"Queue '{queue}' already exists.", queue=queue)
    record = _apply({"name": queue, "created_at": now}, update, now)
    try:
        await ctx.storage.queues.put(queue, record, entry.revision)
    except RevisionConflict as exc:
        raise ConflictError(f"Queue '{queue}' already exists.", queue=queue) from exc
    await emit(ctx, queue, "queue.created", {"config": queue_config.to_wire(record["config"])})
    return record


async def delete(ctx: Context, queue: str, strategy: str) -> dict[str, Any]:
    """Delete a queue that holds no unfinished job (the `reject` strategy, queue-config §5.3)."""
    if strategy != "reject":
        raise UnsupportedError(
            f"Deletion strategy '{strategy}' is not supported; use 'reject'.", strategy=strategy
        )
    counts: Mapping[str, int] = (await ctx.storage.counters.read(queue)).get(queue) or {}
    unfinished = sum(counts.get(str(s), 0) for s in NON_TERMINAL)
    if unfinished > 0:
        raise ConflictError(
            f"Queue '{queue}' still holds {unfinished} unfinished jobs.",
            queue=queue,
            unfinished=unfinished,
        )
    entry = await ctx.storage.queues.entry(queue)
    if entry.value is None:
        raise NotFoundError(f"Queue '{queue}' not found.", resource_type="queue", resource_id=queue)
    if not await ctx.storage.queues.remove(queue, entry.revision):
        raise ConflictError(f"Queue '{queue}' changed meanwhile; retry.", queue=queue)
    await emit(ctx, queue, "queue.deleted", {})
    return {"queue": queue, "strategy": strategy, "jobs_affected": 0, "state": "deleted"}


def view(record: Mapping[str, Any]) -> dict[str, Any]:
    """A queue entry as the API shows it."""
    paused = bool(record.get("paused"))
    wire = queue_config.to_wire(record.get("config") or {})
    wire["paused"] = paused
    return {
        "name": record.get("name"),
        "state": "paused" if paused else "active",
        "status": "paused" if paused else "active",
        "paused": paused,
        "paused_at": record.get("paused_at"),
        "config": wire,
        "created_at": record.get("created_at"),
        "updated_at": record.get("updated_at"),
    }


async def _change(ctx: Context, queue: str, update: dict[str, Any]) -> dict[str, Any]:
    for _ in range(MAX_CAS_ATTEMPTS):
        now = ids.format_ts(ctx.clock())
        entry = await ctx.storage.queues.entry(queue)
        before = entry.value or {"name": queue, "created_at": now}
        record = _apply(before, update, now)
        try:
            await ctx.storage.queues.put(queue, record, entry.revision)
        except RevisionConflict:
            continue
        await _announce(ctx, queue, before, record, update)
        return record
    raise ConflictError(f"Queue '{queue}' is being changed concurrently; retry.", queue=queue)


def _apply(before: Mapping[str, Any], update: Mapping[str, Any], now: str) -> dict[str, Any]:
    record = dict(before)
    settings = {k: v for k, v in update.items() if k != "paused"}
    record["config"] = {
        k: v
        for k, v in queue_config.merged(before.get("config"), settings).items()
        if k != "paused"
    }
    if "paused" in update and bool(update["paused"]) != bool(before.get("paused")):
        record["paused"] = bool(update["paused"])
        record["paused_at"] = now if update["paused"] else None
    record.setdefault("paused", False)
    record["updated_at"] = now
    return record


async def _announce(
    ctx: Context,
    queue: str,
    before: Mapping[str, Any],
    after: Mapping[str, Any],
    update: Mapping[str, Any],
) -> None:
    if bool(before.get("paused")) != bool(after.get("paused")):
        kind = "queue.paused" if after.get("paused") else "queue.resumed"
        await emit(ctx, queue, kind, {"paused": bool(after.get("paused"))})
    if set(update) - {"paused"}:
        await emit(
            ctx, queue, "queue.config_updated", {"config": queue_config.to_wire(after["config"])}
        )


async def emit(ctx: Context, queue: str, kind: str, data: dict[str, Any]) -> None:
    """Append a queue-level event (`queue.*`, `backpressure.*`) to the event log."""
    now = ctx.clock()
    event = {
        "specversion": "1.0",
        "id": "evt_" + ids.uuid7(now),
        "type": kind,
        "source": ctx.source,
        "time": ids.format_ts(now),
        "subject": queue,
        "datacontenttype": "application/json",
        "data": {"queue": queue, **data},
    }
    await ctx.storage.events.append(queue, event)
