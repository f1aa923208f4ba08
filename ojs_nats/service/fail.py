"""FAIL (nack): a worker reports failure; the retry policy decides what follows (§10.3)."""

from __future__ import annotations

from typing import Any

from ojs_nats.model import job as jobs
from ojs_nats.service.apply import transition
from ojs_nats.service.context import Context


async def fail(
    ctx: Context, job_id: str, error: object, worker_id: str | None, requeue: bool = False
) -> dict[str, Any]:
    reported = jobs.validate_error(error)
    change = await transition(
        ctx, job_id, lambda record, now: jobs.fail(record, now, reported, worker_id, requeue)
    )
    return change.job
