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
from ojs_nats.service import liveness
from ojs_nats.service.apply import MAX_CAS_ATTEMPTS, transition
from ojs_nats.service.context import Context
from ojs_nats.storage import RevisionConflict

DIRECTIVES = ("quiet", "terminate")
#: When two sources disagree, the stronger directive wins.
_STRENGTH = {"running": 0, "quiet": 1, "terminate": 2}
#: Job ids kept in a worker's entry for its recovery.
MAX_LISTED_JOBS = 1000


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
    for _ in range(MAX_CAS_ATTEMPTS):
        found = await ctx.storage.workers.read(worker_id)
        state, entry = _entry(found.value, worker_id, job_ids, extended, details, now)
        watch = liveness.needs_watch(ctx, found.value)
        if watch:
            # Timer first: an entry saying "watched" always has a timer behind it.
            await liveness.watch(ctx, worker_id, now)
        entry["watched"] = watch or bool((found.value or {}).get("watched"))
        try:
            await ctx.storage.workers.write(worker_id, entry, found.revision)
        except RevisionConflict:
            continue  # the liveness timer (or a concurrent beat) wrote first: read again
        break
    else:
        raise ConflictError(f"Worker {worker_id} is being updated concurrently; beat again.")
    return {
        "state": state,
        "directive": state,
        "jobs_extended": [job["id"] for job in extended],
        "server_time": ids.format_ts(now),
        **_timing(ctx),
    }


def _timing(ctx: Context) -> dict[str, int]:
    """What a worker needs to beat in time (ojs-worker-protocol.md §3.3), in seconds: an
    interval at most a quarter of the timeout that declares it dead (§10.3's margin)."""
    timing = {"visibility_timeout_default": ctx.settings.default_visibility_timeout_ms // 1000}
    timeout_ms = ctx.settings.worker_heartbeat_timeout_ms
    if timeout_ms <= 0:  # no worker is ever declared dead
        return {**timing, "heartbeat_interval": 5}
    return {
        **timing,
        "heartbeat_interval": max(1, min(5, timeout_ms // 4000)),
        "heartbeat_timeout": max(1, round(timeout_ms / 1000)),
    }


def _entry(
    stored: dict[str, Any] | None,
    worker_id: str,
    job_ids: list[str],
    extended: list[dict[str, Any]],
    details: dict[str, Any],
    now: int,
) -> tuple[str, dict[str, Any]]:
    """The directive to answer and the worker's new registry entry."""
    entry = dict(stored or {})
    state = entry.get("directive") or "running"
    for job in extended:
        wanted = (job.get("meta") or {}).get("test_directive")
        if wanted in DIRECTIVES and _STRENGTH[wanted] > _STRENGTH[state]:
            state = wanted
    if entry.get("status") == liveness.DEAD:
        # A worker declared dead that beats again re-registers (worker protocol §10.4); its
        # recovered jobs are no longer its own, so their ACKs are refused.
        for key in ("dead_at", "recovered_jobs", "started_at"):
            entry.pop(key, None)
    entry.update(
        {
            "worker_id": worker_id,
            "status": liveness.ALIVE,
            "state": state,
            "last_heartbeat": ids.format_ts(now),
            "last_heartbeat_ms": now,
            "active_jobs": len(job_ids),
            # The list the dead-worker recovery uses (§10.2); more jobs than this are left to
            # their own stall and visibility timeouts.
            "active_job_ids": job_ids[:MAX_LISTED_JOBS],
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
    return state, entry


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
