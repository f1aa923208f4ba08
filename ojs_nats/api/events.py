"""Event polling (ojs-events.md §6.4):
`GET /ojs/v1/events?types=&queues=&job_types=&after=&limit=`.

`after` (alias `cursor`) is the `cursor` of an earlier page or the id of an event (`evt_...`).
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from ojs_nats.api.http import context, ojs_response, query_int
from ojs_nats.errors import InvalidRequestError
from ojs_nats.service import events

router = APIRouter(prefix="/ojs/v1/events")


def _csv(request: Request, name: str) -> list[str]:
    raw = request.query_params.get(name, "")
    return [part.strip() for part in raw.split(",") if part.strip()]


def _after(request: Request) -> events.Position | str:
    name = "after" if request.query_params.get("after") else "cursor"
    raw = request.query_params.get(name) or "0"
    if events.is_event_id(raw):
        return raw
    position = events.parse_cursor(raw)
    if position is not None:
        return position
    raise InvalidRequestError(
        f"The '{name}' parameter must be an event id (evt_<UUIDv7>) or a cursor from a"
        " previous page.",
        field=name,
    )


@router.get("")
async def list_events(request: Request) -> Response:
    after = _after(request)
    limit = query_int(request, "limit", 100, minimum=1, maximum=events.MAX_LIMIT)
    page = await events.list_events(
        context(request),
        _csv(request, "types"),
        _csv(request, "queues"),
        _csv(request, "job_types"),
        after,
        limit,
    )
    return ojs_response(page)
