"""Reading the event log (the polling endpoint of ojs-events.md §6.4)."""

from __future__ import annotations

import re
from typing import Any

from ojs_nats.model import ids
from ojs_nats.service.context import Context
from ojs_nats.storage.events import Position as Position  # re-exported for the API layer

MAX_LIMIT = 1000
#: Prefix of event ids (ojs-events.md §2.3): `evt_` + UUIDv7.
EVENT_ID_PREFIX = "evt_"


#: A page's cursor: `<seq>` (after stored message seq) or `<seq>.<n>` (after its first n events).
_CURSOR = re.compile(r"(\d{1,19})(?:\.(\d{1,4}))?")


def is_event_id(text: str) -> bool:
    return text.startswith(EVENT_ID_PREFIX) and ids.is_uuid7(text[len(EVENT_ID_PREFIX) :])


def parse_cursor(text: str) -> Position | None:
    """The position a page's `cursor` names, or None when `text` is not one."""
    match = _CURSOR.fullmatch(text)
    if match is None:
        return None
    seq, skip = match.groups()
    if skip is None:
        return Position.after(int(seq))
    return Position(int(seq), int(skip)) if int(seq) > 0 and int(skip) > 0 else None


def format_cursor(position: Position) -> str:
    if position.skip:
        return f"{position.seq}.{position.skip}"
    return str(position.seq - 1)


async def list_events(
    ctx: Context,
    types: list[str],
    queues: list[str],
    job_types: list[str],
    after: Position | str,
    limit: int,
) -> dict[str, Any]:
    """One page of events after `after`: where an earlier page's cursor said to resume, or the
    id of an event (`is_event_id`), matching every filter given (AND; an empty one matches all).
    """
    if isinstance(after, str):
        after = await ctx.storage.events.locate(after, ids.uuid7_ms(after[len(EVENT_ID_PREFIX) :]))
    events, cursor, more = await ctx.storage.events.read(
        types, queues, after, min(limit, MAX_LIMIT), job_types
    )
    return {"events": events, "cursor": format_cursor(cursor), "has_more": more}
