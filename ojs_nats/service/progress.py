"""PROGRESS: workers report how far an active job got; anyone reads it (ojs-progress.md §6-§7).

A report on a job that is no longer active is ignored without an error (§6.1): the job may have
finished while the report was on its way.
"""

from __future__ import annotations

from typing import Any

from ojs_nats.errors import ConflictError, NotFoundError
from ojs_nats.model import progress
from ojs_nats.service.apply import transition
from ojs_nats.service.context import Context


async def report(
    ctx: Context, job_id: str, update: progress.Report, worker_id: str | None
) -> dict[str, Any]:
    try:
        change = await transition(
            ctx,
            job_id,
            lambda record, now: progress.record(
                record, now, worker_id, update, ctx.settings.default_visibility_timeout_ms
            ),
        )
    except ConflictError:
        return await get(ctx, job_id)
    return progress.view(change.record)


async def get(ctx: Context, job_id: str) -> dict[str, Any]:
    stored = await ctx.storage.jobs.get(job_id)
    if stored is None:
        raise NotFoundError(f"Job '{job_id}' not found.", resource_type="job", resource_id=job_id)
    return progress.view(stored.record)
