"""The dead-letter queue: list, retry and discard dead-lettered jobs (§12, ojs-dead-letter.md)."""

from __future__ import annotations

import asyncio
from typing import Any

from ojs_nats.errors import NotFoundError
from ojs_nats.model import job as jobs
from ojs_nats.service.apply import transition
from ojs_nats.service.context import Context


async def page(
    ctx: Context, queue: str | None, limit: int, offset: int, after: int
) -> dict[str, Any]:
    job_ids, total, cursor = await ctx.storage.dead.page(queue, offset, limit, after)
    stored = await asyncio.gather(*(ctx.storage.jobs.get(j) for j in job_ids))
    listed = [s.record["job"] for s in stored if s is not None and s.record["sys"].get("dead")]
    # With a cursor the total of what lies before it is unknown: a full page means "maybe more".
    has_more = len(job_ids) == limit if after else offset + len(job_ids) < total
    pagination: dict[str, Any] = {
        "total": total,
        "limit": limit,
        "offset": offset,
        "has_more": bool(has_more),
    }
    if has_more:
        pagination["next_cursor"] = str(cursor)
    return {"jobs": listed, "pagination": pagination}


async def retry(ctx: Context, job_id: str) -> dict[str, Any]:
    await _dead_record(ctx, job_id)
    change = await transition(ctx, job_id, jobs.retry_dead)
    return change.job


async def discard(ctx: Context, job_id: str) -> None:
    """Remove a dead-lettered job for good (its record and its index entry)."""
    record = await _dead_record(ctx, job_id)
    await ctx.storage.dead.remove(str(record["job"]["queue"]), job_id)
    await ctx.storage.jobs.delete(job_id)


async def _dead_record(ctx: Context, job_id: str) -> dict[str, Any]:
    stored = await ctx.storage.jobs.get(job_id)
    if stored is None or not stored.record["sys"].get("dead"):
        raise NotFoundError(
            f"Dead letter job '{job_id}' not found.",
            resource_type="dead_letter_job",
            resource_id=job_id,
        )
    return stored.record
