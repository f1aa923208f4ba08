"""Worker endpoints: FETCH, ACK, FAIL (nack) and BEAT (§10)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from ojs_nats.api import errors
from ojs_nats.api.http import context, json_body, ojs_response, optional_int
from ojs_nats.errors import InvalidRequestError, NotFoundError
from ojs_nats.model import envelope, fairness, ids
from ojs_nats.service import ack, beat, fail, fetch

router = APIRouter(prefix="/ojs/v1/workers")

#: Most jobs one fetch may claim, and one batch ACK may settle.
MAX_FETCH = 1000
#: The long-poll extension's announcement (see `fetch_jobs`).
FETCH_WAIT_HEADER = "OJS-Fetch-Wait-Max-Ms"
FETCH_WAIT_HEADERS = {FETCH_WAIT_HEADER: str(fetch.MAX_WAIT_MS)}
MAX_ACK_BATCH = 1000


@router.post("/fetch")
async def fetch_route(request: Request) -> Response:
    return await fetch_jobs(request)


@router.post("/ack")
async def ack_route(request: Request) -> Response:
    return await ack_job(request, await json_body(request))


@router.post("/ack/batch")
async def ack_batch_route(request: Request) -> Response:
    """Extension: many ACKs in one request (`{"acks": [{"job_id", "result"}], "worker_id"}`).

    Each item is settled exactly as `POST /workers/ack` would; the answer lists every outcome,
    failures in the OJS error shape. Saves a request per job for workers that batch.
    """
    body = await json_body(request)
    items = body.get("acks")
    if not isinstance(items, list) or not items or len(items) > MAX_ACK_BATCH:
        raise InvalidRequestError(
            f"The 'acks' field must be an array of 1 to {MAX_ACK_BATCH} acks.", field="acks"
        )
    if not all(isinstance(item, dict) for item in items):
        raise InvalidRequestError("Each ack must be an object with a 'job_id'.", field="acks")
    acks = [(_job_id(item), item.get("result")) for item in items]
    outcomes = await ack.ack_many(context(request), acks, _worker_id(body))
    return ojs_response(ack.batch_answer(acks, outcomes, errors.request_id(request)))


@router.post("/nack")
async def nack_route(request: Request) -> Response:
    return await nack_job(request, await json_body(request))


@router.post("/heartbeat")
async def heartbeat_route(request: Request) -> Response:
    body = await json_body(request)
    worker_id = _worker_id(body, required=True)
    assert worker_id is not None
    active = body.get("active_jobs")
    if isinstance(active, list):
        job_ids = active
    elif isinstance(body.get("active_job_ids"), list):
        job_ids = body["active_job_ids"]
    elif active is None or isinstance(active, int):
        job_ids = []
    else:
        raise InvalidRequestError("active_jobs must be an array of job ids.", field="active_jobs")
    if not all(isinstance(j, str) for j in job_ids):
        raise InvalidRequestError("active_jobs must be an array of job ids.", field="active_jobs")
    visibility = optional_int(body.get("visibility_timeout_ms"), "visibility_timeout_ms")
    result = await beat.beat(
        context(request), worker_id, [j for j in job_ids if ids.is_uuid7(j)], visibility, body
    )
    return ojs_response(result)


async def fetch_jobs(request: Request) -> Response:
    body = await json_body(request)
    queues = body.get("queues", ["default"] if "queue" not in body else [body["queue"]])
    if not isinstance(queues, list) or not queues:
        raise InvalidRequestError(
            "The 'queues' field must be a non-empty array of queue names.", field="queues"
        )
    names = fairness.order(
        [envelope.validate_queue_name(q) for q in queues], body.get("strategy"), body.get("weights")
    )
    count = optional_int(body.get("count"), "count", 1, MAX_FETCH, default=1)
    visibility = optional_int(body.get("visibility_timeout_ms"), "visibility_timeout_ms")
    # Extension: `wait_ms` makes the fetch a long poll. Every answer names the longest wait
    # allowed, which is how a worker learns that it may ask for one.
    wait_ms = optional_int(body.get("wait_ms"), "wait_ms", 0, fetch.MAX_WAIT_MS, default=0)
    assert count is not None
    assert wait_ms is not None
    jobs = await fetch.fetch(
        context(request),
        list(dict.fromkeys(names)),
        count,
        _worker_id(body),
        visibility,
        wait_ms,
        gone=request.is_disconnected,
    )
    return ojs_response({"jobs": jobs}, headers=FETCH_WAIT_HEADERS)


async def ack_job(request: Request, body: dict[str, Any]) -> Response:
    job_id = _job_id(body)
    job = await ack.ack(context(request), job_id, body.get("result"), _worker_id(body))
    return ojs_response(
        {
            "acknowledged": True,
            "id": job_id,
            "job_id": job_id,
            "state": job["state"],
            "completed_at": job.get("completed_at"),
            "job": job,
        }
    )


async def nack_job(request: Request, body: dict[str, Any]) -> Response:
    job_id = _job_id(body)
    requeue = body.get("requeue", False)
    if not isinstance(requeue, bool):
        raise InvalidRequestError("The 'requeue' field must be a boolean.", field="requeue")
    job = await fail.fail(context(request), job_id, body.get("error"), _worker_id(body), requeue)
    response = {
        "id": job_id,
        "job_id": job_id,
        "state": job["state"],
        "attempt": job.get("attempt"),
        "max_attempts": job.get("max_attempts"),
    }
    for field in ("next_attempt_at", "retry_delay_ms", "discarded_at", "completed_at"):
        if job.get(field) is not None and (
            field != "retry_delay_ms" or job["state"] == "retryable"
        ):
            response[field] = job[field]
    response["job"] = job
    return ojs_response(response)


def _job_id(body: dict[str, Any]) -> str:
    job_id = body.get("job_id", body.get("id"))
    if job_id is None:
        raise InvalidRequestError("The 'job_id' field is required.", field="job_id")
    if not isinstance(job_id, str):
        raise InvalidRequestError("The 'job_id' field must be a string.", field="job_id")
    if not ids.is_uuid7(job_id):
        raise NotFoundError(
            f"Job '{job_id[:64]}' not found.", resource_type="job", resource_id=job_id[:64]
        )
    return job_id


def _worker_id(body: dict[str, Any], required: bool = False) -> str | None:
    worker_id = body.get("worker_id")
    if worker_id is None:
        if required:
            raise InvalidRequestError("The 'worker_id' field is required.", field="worker_id")
        return None
    if not isinstance(worker_id, str) or not worker_id or len(worker_id) > 200:
        raise InvalidRequestError(
            "The 'worker_id' field must be a non-empty string.", field="worker_id"
        )
    return worker_id
