"""Reading the event log (the polling endpoint of ojs-events.md §6.4)."""

from __future__ import annotations

from typing import Any

from ojs_nats.service.context import Context

MAX_LIMIT = 1000


async def list_events(
    ctx: Context, types: list[str], queues: list[str], after: int, limit: int
) -> dict[str, Any]:
    events, cursor, more = await ctx.storage.events.read(
        types, queues, after, min(limit, MAX_LIMIT)
    )
    return {"events": events, "cursor": str(cursor), "has_more": more}
