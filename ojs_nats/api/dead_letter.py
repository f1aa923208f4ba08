"""Dead-letter endpoints (§12): list, retry, discard."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from ojs_nats.api.http import context, json_body, ojs_response, query_int
from ojs_nats.api.jobs import checked_id
from ojs_nats.errors import InvalidRequestError
from ojs_nats.model import envelope
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
    return ojs_response(await dead_letter.page(context(request), queue, limit, offset, after))


@router.post("/{job_id}/retry")
async def retry_dead(request: Request, job_id: str) -> Response:
    await json_body(request, required=False)
    job = await dead_letter.retry(context(request), checked_id(job_id))
    return ojs_response({"job": job})


@router.delete("/{job_id}")
async def discard_dead(request: Request, job_id: str) -> Response:
    await dead_letter.discard(context(request), checked_id(job_id))
    return ojs_response({"deleted": True, "id": job_id, "job_id": job_id})
