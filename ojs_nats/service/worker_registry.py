"""The worker listing of the admin API (ojs-admin-api.md §9.1, §9.2): what each worker's
registry entry says, with workers declared dead (ojs-worker-protocol.md §10) shown as `dead`
and counted as stale, never as running."""

from __future__ import annotations

from typing import Any

from ojs_nats.errors import NotFoundError
from ojs_nats.service import liveness
from ojs_nats.service.context import Context

_SHOWN = ("hostname", "pid", "queues", "concurrency", "labels", "started_at", "active_job_ids")


def view(entry: dict[str, Any]) -> dict[str, Any]:
    """One worker as listed: `state` is `dead` or `stopped` once it is gone, else what it
    reports (running / quiet / terminate); `directive` is what it is told."""
    status = entry.get("status") or liveness.ALIVE
    state = (
        status if status != liveness.ALIVE else entry.get("reported_state") or entry.get("state")
    )
    shown = {k: entry[k] for k in _SHOWN if k in entry}
    jobs = entry.get("active_jobs")
    return {
        "id": entry.get("worker_id"),
        **shown,
        "state": state or "running",
        "directive": entry.get("state") or "running",
        "active_jobs": jobs if isinstance(jobs, int) else 0,
        "last_heartbeat_at": entry.get("last_heartbeat"),
        **({"dead_at": entry["dead_at"]} if "dead_at" in entry else {}),
        **({"recovered_jobs": entry["recovered_jobs"]} if "recovered_jobs" in entry else {}),
    }


async def list_workers(ctx: Context) -> dict[str, Any]:
    items = sorted((view(e) for e in await ctx.storage.workers.list()), key=lambda w: str(w["id"]))
    summary = {"total": len(items), "running": 0, "quiet": 0, "terminate": 0, "dead": 0}
    summary["stopped"] = 0
    for item in items:
        if item["state"] in summary:
            summary[item["state"]] += 1
    summary["stale"] = summary["dead"]
    return {
        "items": items,
        "summary": summary,
        "pagination": {"total": len(items), "page": 1, "per_page": max(len(items), 1)},
    }


async def get_worker(ctx: Context, worker_id: str) -> dict[str, Any]:
    entry = await ctx.storage.workers.get(worker_id)
    if entry is None:
        raise NotFoundError(
            f"Worker '{worker_id[:200]}' not found.",
            resource_type="worker",
            resource_id=worker_id[:200],
        )
    return view(entry)
