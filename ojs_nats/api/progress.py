"""Progress endpoints (ojs-progress.md §10): PUT and GET `/ojs/v1/jobs/{id}/progress`."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from ojs_nats.api.http import context, json_body, ojs_response
from ojs_nats.api.jobs import checked_id
from ojs_nats.errors import InvalidRequestError
from ojs_nats.model import progress as model
from ojs_nats.service import progress

router = APIRouter(prefix="/ojs/v1/jobs")


@router.put("/{job_id}/progress")
async def report_progress(request: Request, job_id: str) -> Response:
    body = await json_body(request)
    worker_id = body.get("worker_id")
    if worker_id is not None and not isinstance(worker_id, str):
        raise InvalidRequestError("The 'worker_id' field must be a string.", field="worker_id")
    view = await progress.report(
        context(request), checked_id(job_id), model.validate(body), worker_id
    )
    return ojs_response(view, headers=_headers(view))


@router.get("/{job_id}/progress")
async def get_progress(request: Request, job_id: str) -> Response:
    view = await progress.get(context(request), checked_id(job_id))
    return ojs_response(view, headers=_headers(view))


def _headers(view: dict[str, object]) -> dict[str, str]:
    headers = {"Cache-Control": "no-cache"}
    if view.get("progress") is not None:
        headers["X-OJS-Progress"] = str(view["progress"])
    return headers
