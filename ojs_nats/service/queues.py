"""Queues: the list of known queues with their counts (counters, never a scan of jobs)."""

from __future__ import annotations

from collections import Counter
from typing import Any

from ojs_nats.service.context import Context


async def list_queues(ctx: Context) -> list[dict[str, Any]]:
    """Every known queue with its status and counts, sorted by name."""
    counts = await ctx.storage.counters.read()
    registry = ctx.storage.queues.mirror
    names = sorted(set(registry) | set(counts))
    queues = []
    for name in names:
        settings = registry.get(name, {})
        per_state = counts.get(name) or Counter[str]()
        queues.append(
            {
                "name": name,
                "status": "paused" if settings.get("paused") else "active",
                "created_at": settings.get("created_at"),
                "available": per_state.get("available", 0),
                "active": per_state.get("active", 0),
            }
        )
    return queues
