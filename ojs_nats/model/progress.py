"""Progress of an active job (ojs-progress.md): validating a report and recording it. Pure.

Kept in the record's `sys`, tagged with its attempt: a retry starts with none, a failed attempt
keeps its value, a completed job reads 1.0; the fraction never goes down; a report extends the
lease exactly as a heartbeat does.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from ojs_nats.errors import InvalidRequestError
from ojs_nats.model import ids
from ojs_nats.model import job as jobs
from ojs_nats.model.lifecycle import State


@dataclasses.dataclass(frozen=True, slots=True)
class Report:
    fraction: float | None
    data: dict[str, Any] | None


def validate(body: Mapping[str, Any]) -> Report:
    """A PUT body: `progress` (a number, clamped to 0..1) and/or `data` (an object)."""
    fraction = body.get("progress")
    data = body.get("data")
    if fraction is not None and (
        isinstance(fraction, bool) or not isinstance(fraction, int | float)
    ):
        raise InvalidRequestError("The 'progress' field must be a number.", field="progress")
    if data is not None and not isinstance(data, Mapping):
        raise InvalidRequestError("The 'data' field must be an object.", field="data")
    if fraction is None and data is None:
        raise InvalidRequestError("Report 'progress', 'data' or both.", field="progress")
    clamped = None if fraction is None else min(1.0, max(0.0, float(fraction)))
    return Report(clamped, dict(data) if data is not None else None)


def record(
    rec: jobs.Record, now: int, worker_id: str | None, report: Report, default_visibility_ms: int
) -> jobs.Change:
    """Store `report` on an active job and extend its lease; ConflictError if not active."""
    change = jobs.extend(rec, now, worker_id, None, default_visibility_ms)
    sys = change.record["sys"]
    attempt = int(change.record["job"].get("attempt") or 0)
    previous = _current(sys, attempt) or {}
    fraction = report.fraction
    if previous.get("progress") is not None and (
        fraction is None or fraction < previous["progress"]
    ):
        fraction = previous["progress"]
    data = report.data if report.data is not None else previous.get("data")
    sys["progress"] = {"attempt": attempt, "progress": fraction, "data": data, "updated_ms": now}
    change.events = [jobs.Event("progress.updated", {"progress": fraction, "data": data})]
    return change


def view(rec: jobs.Record) -> dict[str, Any]:
    """The GET /jobs/{id}/progress body (§7.1)."""
    job = rec["job"]
    attempt = int(job.get("attempt") or 0)
    current = _current(rec["sys"], attempt)
    body: dict[str, Any] = {
        "job_id": job["id"],
        "state": job["state"],
        "progress": None,
        "data": None,
        "updated_at": None,
    }
    if current is not None:
        fraction = current.get("progress")
        if job["state"] == State.COMPLETED.value:
            fraction = 1.0
        body.update(
            progress=fraction,
            data=current.get("data"),
            updated_at=ids.format_ts(int(current["updated_ms"])),
        )
    return body


def _current(sys: Mapping[str, Any], attempt: int) -> dict[str, Any] | None:
    progress = sys.get("progress")
    if isinstance(progress, dict) and progress.get("attempt") == attempt:
        return progress
    return None
