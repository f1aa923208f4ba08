"""Dead-letter endpoints (§12): list (and search, ojs-dead-letter.md §9.1), retry, discard."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from ojs_nats.api.http import context, json_body, ojs_response, query_int
from ojs_nats.api.jobs import checked_id
from ojs_nats.errors import InvalidRequestError
from ojs_nats.model import envelope, ids
from ojs_nats.service import dead_letter

router = APIRouter(prefix="/ojs/v1/dead-letter")

DEFAULT_LIMIT, MAX_LIMIT = 50, 200


@router.get("")
async def list_dead(request: Request) -> Response:
    queue = request.query_params.get("queue") or None
    if queue is not None:
        queue = envelope.validate_queue_name(queue)
    limit = query_int(request, "limit", DEFAULT_LIMIT, minimum=1, maximum=MAX_LIMIT)
    offset = query_int(request, "offset", 0)
    cursor = request.query_params.get("cursor")
    after = 0
    if cursor:
        if not cursor.isdigit():
            raise InvalidRequestError(
                "The 'cursor' parameter is not a cursor this server issued.", field="cursor"
            )
        after = int(cursor)
    match = _search(request)
    if match:
        page = await dead_letter.search(context(request), queue, match, limit, offset, after)
    else:
        page = await dead_letter.page(context(request), queue, limit, offset, after)
    return ojs_response(page)


def _search(request: Request) -> dead_letter.Search:
    """`type` (exact, or a prefix ending in `*`), `error_type`, `since` and `until` (RFC 3339
    bounds of `discarded_at`)."""
    params = request.query_params
    bounds: dict[str, int | None] = {}
    for name in ("since", "until"):
        raw = params.get(name) or None
        try:
            bounds[name] = ids.parse_ts(raw) if raw else None
        except ValueError as exc:
            raise InvalidRequestError(
                f"Query parameter '{name}' must be an RFC 3339 timestamp with a time zone.",
                field=name,
            ) from exc
    return dead_letter.Search(
        type=params.get("type") or None,
        error_type=params.get("error_type") or None,
        since=bounds["since"],
        until=bounds["until"],
    )


@router.post("/{job_id}/retry")
async def retry_dead(request: Request, job_id: str) -> Response:
    await json_body(request, required=False)
    job = await dead_letter.retry(context(request), checked_id(job_id))
    return ojs_response({"job": job})


@router.delete("/{job_id}")
async def discard_dead(request: Request, job_id: str) -> Response:
    await dead_letter.discard(context(request), checked_id(job_id))
    return ojs_response({"deleted": True, "id": job_id, "job_id": job_id})
