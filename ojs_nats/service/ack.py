"""ACK: a worker reports success; the job becomes completed (ojs-http-binding.md §10.2)."""

from __future__ import annotations

import asyncio
from typing import Any

from ojs_nats.errors import OjsError
from ojs_nats.model import job as jobs
from ojs_nats.service.apply import transition
from ojs_nats.service.context import Context


async def ack(ctx: Context, job_id: str, result: Any, worker_id: str | None) -> dict[str, Any]:
    change = await transition(
        ctx, job_id, lambda record, now: jobs.complete(record, now, result, worker_id)
    )
    return change.job


async def ack_many(
    ctx: Context, acks: list[tuple[str, Any]], worker_id: str | None
) -> list[dict[str, Any] | OjsError]:
    """Several ACKs at once, each exactly as `ack` (one job's failure is its own answer)."""

    async def one(job_id: str, result: Any) -> dict[str, Any] | OjsError:
        try:
            return await ack(ctx, job_id, result, worker_id)
        except OjsError as exc:
            return exc

    return list(await asyncio.gather(*(one(job_id, result) for job_id, result in acks)))


def batch_answer(
    acks: list[tuple[str, Any]], outcomes: list[dict[str, Any] | OjsError], request_id: str
) -> dict[str, Any]:
    """The batch ACK extension's answer: each outcome in order, failures in the OJS error
    shape, and how many were acknowledged."""
    results: list[dict[str, Any]] = []
    for (job_id, _), outcome in zip(acks, outcomes, strict=True):
        if isinstance(outcome, dict):
            results.append(
                {
                    "job_id": job_id,
                    "acknowledged": True,
                    "state": outcome["state"],
                    "completed_at": outcome.get("completed_at"),
                }
            )
        else:
            results.append(
                {"job_id": job_id, "acknowledged": False, "error": outcome.to_body(request_id)}
            )
    done = sum(1 for r in results if r["acknowledged"])
    return {"results": results, "acknowledged": done, "failed": len(results) - done}
