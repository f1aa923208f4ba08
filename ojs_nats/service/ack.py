"""ACK: a worker reports success; the job becomes completed (ojs-http-binding.md §10.2)."""

from __future__ import annotations

from typing import Any

from ojs_nats.model import job as jobs
from ojs_nats.service.apply import transition
from ojs_nats.service.context import Context


async def ack(ctx: Context, job_id: str, result: Any, worker_id: str | None) -> dict[str, Any]:
    change = await transition(
        ctx, job_id, lambda record, now: jobs.complete(record, now, result, worker_id)
    )
    return change.job
