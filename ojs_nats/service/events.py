"""Reading the event log (the polling endpoint of ojs-events.md §6.4)."""

from __future__ import annotations

from typing import Any

from ojs_nats.model import ids
from ojs_nats.service.context import Context

MAX_LIMIT = 1000
#: Prefix of event ids (ojs-events.md §2.3): `evt_` + UUIDv7.
EVENT_ID_PREFIX = "evt_"


def is_event_id(text: str) -> bool:
    return text.startswith(EVENT_ID_PREFIX) and ids.is_uuid7(text[len(EVENT_ID_PREFIX) :])


async def list_events(
    ctx: Context,
    types: list[str],
    queues: list[str],
    job_types: list[str],
    after: int | str,
    limit: int,
) -> dict[str, Any]:
    """One page of events after `after`: a cursor of an earlier page (a stream sequence) or the
    id of an event (`is_event_id`), matching every filter given (AND; an empty one matches all).
    """
    if isinstance(after, str):
        after = await ctx.storage.events.locate(after, ids.uuid7_ms(after[len(EVENT_ID_PREFIX) :]))
    events, cursor, more = await ctx.storage.events.read(
        types, queues, after, min(limit, MAX_LIMIT), job_types
    )
    return {"events": events, "cursor": str(cursor), "has_more": more}
