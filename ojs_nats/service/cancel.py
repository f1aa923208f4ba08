"""CANCEL: stop a job that has not finished, including one a worker is running (§9.4)."""

from __future__ import annotations

from typing import Any

from ojs_nats.model import job as jobs
from ojs_nats.service.apply import transition
from ojs_nats.service.context import Context


async def cancel(ctx: Context, job_id: str) -> tuple[dict[str, Any], str]:
    """Returns the cancelled job and the state it was in."""
    change = await transition(ctx, job_id, jobs.cancel)
    return change.job, str(change.before)


async def activate(ctx: Context, job_id: str) -> tuple[dict[str, Any], str]:
    """ACTIVATE: a pending job becomes available (§9.5)."""
    change = await transition(ctx, job_id, jobs.activate)
    return change.job, str(change.before)
