"""Event polling (ojs-events.md §6.4): `GET /ojs/v1/events?types=&queues=&after=&limit=`."""

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


@router.get("")
async def list_events(request: Request) -> Response:
    after_raw = request.query_params.get("after") or request.query_params.get("cursor") or "0"
    if not after_raw.isdigit():
        raise InvalidRequestError(
            "The 'after' parameter must be a cursor from a previous page.", field="after"
        )
    limit = query_int(request, "limit", 100, minimum=1, maximum=events.MAX_LIMIT)
    page = await events.list_events(
        context(request), _csv(request, "types"), _csv(request, "queues"), int(after_raw), limit
    )
    return ojs_response(page)
