"""INFO: read one job (§9.3). Read-only: never changes the record."""

from __future__ import annotations

from typing import Any

from ojs_nats.errors import NotFoundError
from ojs_nats.service.context import Context


async def info(ctx: Context, job_id: str) -> dict[str, Any]:
    stored = await ctx.storage.jobs.get(job_id)
    if stored is None:
        raise NotFoundError(f"Job '{job_id}' not found.", resource_type="job", resource_id=job_id)
    return dict(stored.record["job"])
