"""BEAT: a worker's heartbeat. Extends the leases of the jobs it names and relays directives.

A directive (`quiet` or `terminate`) comes from the worker's registry entry (set by an operator)
or from a job the worker holds whose `meta.test_directive` names one; the conformance suite uses
the latter to exercise directives. Otherwise the answer is `running`.
"""

from __future__ import annotations

import asyncio
from typing import Any

from ojs_nats.errors import ConflictError, InvalidRequestError, NotFoundError
from ojs_nats.model import ids
from ojs_nats.model import job as jobs
from ojs_nats.service.apply import transition
from ojs_nats.service.context import Context

DIRECTIVES = ("quiet", "terminate")
#: When two sources disagree, the stronger directive wins.
_STRENGTH = {"running": 0, "quiet": 1, "terminate": 2}


async def beat(
    ctx: Context,
    worker_id: str,
    job_ids: list[str],
    visibility_ms: int | None,
    details: dict[str, Any],
) -> dict[str, Any]:
    now = ctx.clock()
    results = await asyncio.gather(*(_extend(ctx, j, worker_id, visibility_ms) for j in job_ids))
    extended = [job for job in results if job is not None]
    entry = await ctx.storage.workers.get(worker_id) or {}
    state = entry.get("directive") or "running"
    for job in extended:
        wanted = (job.get("meta") or {}).get("test_directive")
        if wanted in DIRECTIVES and _STRENGTH[wanted] > _STRENGTH[state]:
            state = wanted
    entry.update(
        {
            "worker_id": worker_id,
            "state": state,
            "last_heartbeat": ids.format_ts(now),
            "active_jobs": len(job_ids),
            "active_job_ids": job_ids[:100],
            **{
                k: v
                for k, v in details.items()
                if k in ("queues", "concurrency", "hostname", "pid", "labels")
            },
        }
    )
    if details.get("state") in ("running", *DIRECTIVES):
        # What the worker says it is doing (worker protocol §4.2); `state` is what it is told.
        # A final beat with `terminate` and no jobs is a worker's deregistration.
        entry["reported_state"] = details["state"]
    entry.setdefault("started_at", ids.format_ts(now))
    await ctx.storage.workers.put(worker_id, entry)
    return {
        "state": state,
        "directive": state,
        "jobs_extended": [job["id"] for job in extended],
        "server_time": ids.format_ts(now),
    }


async def _extend(
    ctx: Context, job_id: str, worker_id: str, visibility_ms: int | None
) -> dict[str, Any] | None:
    if not isinstance(job_id, str):
        raise InvalidRequestError("active_jobs must be an array of job ids.", field="active_jobs")
    try:
        change = await transition(
            ctx,
            job_id,
            lambda record, now: jobs.extend(
                record, now, worker_id, visibility_ms, ctx.settings.default_visibility_timeout_ms
            ),
        )
    except (NotFoundError, ConflictError):
        return None  # finished or unknown: nothing to extend, and not an error for a heartbeat
    return change.job
