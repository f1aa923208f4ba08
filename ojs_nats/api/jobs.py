"""Job endpoints: PUSH, INFO, CANCEL, ACTIVATE, and the `/jobs/...` aliases of the worker calls.

Some OJS documents name the Level 0 worker surface `POST /jobs/fetch`, `/jobs/{id}/ack` and
`/jobs/{id}/fail`; they are served here as aliases of `/workers/fetch|ack|nack`, with the job id
taken from the path.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from ojs_nats.api import workers
from ojs_nats.api.http import context, json_body, ojs_response
from ojs_nats.errors import NotFoundError
from ojs_nats.model import ids
from ojs_nats.service import backpressure, cancel, info, push

router = APIRouter(prefix="/ojs/v1/jobs")


def checked_id(job_id: str) -> str:
    """Every job id is a UUIDv7; anything else cannot name a job (and never reaches storage)."""
    if not ids.is_uuid7(job_id):
        raise NotFoundError(
            f"Job '{job_id[:64]}' not found.", resource_type="job", resource_id=job_id[:64]
        )
    return job_id


@router.post("")
async def push_job(request: Request) -> Response:
    block = backpressure.block_timeout_s(request.headers.get("ojs-block-timeout"))
    pushed = await push.push(context(request), await json_body(request), block)
    if not pushed.created:  # a unique job's `ignore`: the existing job, nothing created
        return ojs_response({"job": pushed.job, "deduplicated": True}, 200)
    headers = {"Location": f"/ojs/v1/jobs/{pushed.job['id']}", **pushed.headers}
    return ojs_response({"job": pushed.job}, 201, headers)


@router.post("/fetch")
async def fetch_alias(request: Request) -> Response:
    return await workers.fetch_jobs(request)


@router.get("/{job_id}")
async def get_job(request: Request, job_id: str) -> Response:
    return ojs_response({"job": await info.info(context(request), checked_id(job_id))})


@router.delete("/{job_id}")
async def cancel_job(request: Request, job_id: str) -> Response:
    job, previous = await cancel.cancel(context(request), checked_id(job_id))
    return ojs_response({"job": {**job, "previous_state": previous}})


@router.post("/{job_id}/activate")
async def activate_job(request: Request, job_id: str) -> Response:
    job, previous = await cancel.activate(context(request), checked_id(job_id))
    return ojs_response(
        {
            "job": {
                **job,
                "previous_state": previous,
                "activated_at": ids.format_ts(context(request).clock()),
            }
        }
    )


@router.post("/{job_id}/ack")
async def ack_alias(request: Request, job_id: str) -> Response:
    body = await json_body(request, required=False)
    return await workers.ack_job(request, {**body, "job_id": checked_id(job_id)})


@router.post("/{job_id}/fail")
async def fail_alias(request: Request, job_id: str) -> Response:
    body = await json_body(request, required=False)
    return await workers.nack_job(request, {**body, "job_id": checked_id(job_id)})
