"""Batch enqueue: `POST /jobs/batch` (HTTP binding §9.2: all or nothing) and `POST /jobs/bulk`
(bulk-operations §5: `atomic` or `partial`, with a result per job).

A batch body may be up to `BATCH_BODY_FACTOR` times `OJS_MAX_BODY_BYTES`; each job in it is held
to `OJS_MAX_BODY_BYTES` like a single PUSH.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from ojs_nats.api.errors import request_id
from ojs_nats.api.http import context, json_body, ojs_response
from ojs_nats.errors import InvalidRequestError, UnsupportedError
from ojs_nats.service import backpressure, batch

router = APIRouter(prefix="/ojs/v1/jobs")

BATCH_BODY_FACTOR = 16
ATOMICITY = ("atomic", "partial")


async def _body(request: Request) -> dict[str, Any]:
    limit = context(request).settings.max_body_bytes * BATCH_BODY_FACTOR
    return await json_body(request, limit=limit)


@router.post("/batch")
async def push_batch(request: Request) -> Response:
    body = await _body(request)
    raw = batch.items_of(body)
    block = backpressure.block_timeout_s(request.headers.get("ojs-block-timeout"))
    try:
        items = await batch.push_batch(context(request), raw, block, atomic=True)
    except batch.Rejected as rejected:
        raise rejected.first from None
    jobs = [item.job for item in items]
    body_out: dict[str, Any] = {"jobs": jobs, "count": sum(1 for i in items if i.created)}
    deduplicated = [i.index for i in items if not i.created]
    if deduplicated:
        body_out["deduplicated"] = deduplicated
    return ojs_response(body_out, 201, {"X-OJS-Batch-Size": str(len(items))})


@router.post("/bulk")
async def push_bulk(request: Request) -> Response:
    body = await _body(request)
    raw = batch.items_of(body)
    atomicity = body.get("atomicity", "partial")
    if atomicity not in ATOMICITY:
        raise InvalidRequestError("atomicity must be 'atomic' or 'partial'.", field="atomicity")
    if body.get("idempotency_key") is not None or request.headers.get("idempotency-key"):
        raise UnsupportedError(
            "Idempotency keys are not supported; give jobs their own ids (a repeated id is "
            "refused as a duplicate) or unique policies instead.",
            field="idempotency_key",
        )
    block = backpressure.block_timeout_s(request.headers.get("ojs-block-timeout"))
    try:
        items = await batch.push_batch(context(request), raw, block, atomic=atomicity == "atomic")
    except batch.Rejected as rejected:
        items = rejected.items
        rolled_back = True
    else:
        rolled_back = False
    results = [_result(request, item, rolled_back) for item in items]
    failed = sum(1 for r in results if r["status"] == "failed")
    status = 201 if failed == 0 else 422 if failed == len(results) else 207
    return ojs_response(
        {
            "total": len(results),
            "succeeded": len(results) - failed,
            "failed": failed,
            "atomicity": atomicity,
            "items": results,
        },
        status,
        {"X-OJS-Batch-Size": str(len(items))},
    )


def _result(request: Request, item: batch.Item, rolled_back: bool) -> dict[str, Any]:
    if item.error is not None:
        error = item.error.to_body(request_id(request))
        return {"index": item.index, "status": "failed", "error": error}
    if rolled_back:
        return {
            "index": item.index,
            "status": "failed",
            "error": {
                "code": "rolled_back",
                "message": "Not enqueued: another job of this atomic batch failed.",
                "retryable": False,
            },
        }
    return {
        "index": item.index,
        "status": "created" if item.created else "duplicate",
        "job": item.job,
    }
