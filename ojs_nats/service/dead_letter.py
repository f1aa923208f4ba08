"""The dead-letter queue: list, search, retry and discard dead-lettered jobs (§12,
ojs-dead-letter.md). The index is keyed by queue only: a search by type, error type or time reads
the records of the entries it passes (at most `MAX_SCANNED` per request) and filters them.
"""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

from ojs_nats.errors import NotFoundError
from ojs_nats.model import ids
from ojs_nats.model import job as jobs
from ojs_nats.service.apply import transition
from ojs_nats.service.context import Context

#: Index entries a search examines per request at most (then it answers a shorter page, with
#: `has_more` and a cursor to continue from).
MAX_SCANNED = 2048
_SCAN_BATCH = 256


@dataclasses.dataclass(frozen=True, slots=True)
class Search:
    """What a dead-letter job must match (ojs-dead-letter.md §9.1); None matches anything."""

    #: Job type, exact, or a prefix when it ends in `*`.
    type: str | None = None
    #: The last error's `type` or `code`.
    error_type: str | None = None
    #: Bounds of `discarded_at`, epoch milliseconds, inclusive.
    since: int | None = None
    until: int | None = None

    def __bool__(self) -> bool:
        return any(v is not None for v in (self.type, self.error_type, self.since, self.until))

    def matches(self, job: dict[str, Any]) -> bool:
        kind = str(job.get("type", ""))
        if self.type is not None and not (
            kind == self.type or (self.type.endswith("*") and kind.startswith(self.type[:-1]))
        ):
            return False
        error = job.get("error") or {}
        if self.error_type is not None and self.error_type not in (
            error.get("type"),
            error.get("code"),
        ):
            return False
        if self.since is None and self.until is None:
            return True
        try:
            at = ids.parse_ts(str(job.get("discarded_at", "")))
        except ValueError:
            return False
        return (self.since is None or at >= self.since) and (self.until is None or at <= self.until)


async def search(
    ctx: Context, queue: str | None, match: Search, limit: int, offset: int, after: int
) -> dict[str, Any]:
    """One page of the dead-letter jobs matching `match`, oldest first, after cursor `after`
    and skipping `offset` matches. `total` is given when the scan reached the end of the queue
    (the matches from the start, or from the cursor), and left out otherwise."""
    found: list[dict[str, Any]] = []
    skipped = scanned = 0
    cursor, more = after, True
    while more and len(found) < limit and scanned < MAX_SCANNED:
        entries, more = await ctx.storage.dead.scan(queue, cursor, _SCAN_BATCH)
        if not entries:
            more = False
            break
        records = await ctx.storage.jobs.get_many([job_id for _, job_id in entries])
        for i, (seq, job_id) in enumerate(entries):
            scanned, cursor = scanned + 1, seq
            stored = records.get(job_id)
            if stored is None or not stored.record["sys"].get("dead"):
                continue
            if not match.matches(stored.record["job"]):
                continue
            if skipped < offset:
                skipped += 1
                continue
            found.append(stored.record["job"])
            if len(found) >= limit:
                more = more or i + 1 < len(entries)
                break
    pagination: dict[str, Any] = {"limit": limit, "offset": offset, "has_more": more}
    if not more:
        pagination["total"] = skipped + len(found)
    else:
        pagination["next_cursor"] = str(cursor)
    return {"jobs": found, "pagination": pagination}


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
