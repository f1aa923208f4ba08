"""What a job gives back when it changes state: its concurrency slots (on leaving `active`) and its
uniqueness lock (when it finishes); and which throughput counter an ended attempt ticks. Run by
`apply` among the follow-ups; every release is conditional on the revision the thing was taken
at, and none may fail the transition: a lost release is repaired lazily by the next claimant.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Awaitable
from typing import Any

from ojs_nats.model import ids
from ojs_nats.model import job as jobs
from ojs_nats.model.lifecycle import State
from ojs_nats.model.unique import UniquePolicy
from ojs_nats.service.context import Context
from ojs_nats.storage import RevisionConflict

log = logging.getLogger(__name__)


def follow_ups(
    ctx: Context, change: jobs.Change, previous: jobs.Record | None, retention_s: int | None
) -> list[Awaitable[Any]]:
    """The release writes `change` needs (run in parallel with the other follow-ups)."""
    work: list[Awaitable[Any]] = []
    if previous is not None and change.before == State.ACTIVE and change.after != State.ACTIVE:
        for slot in previous["sys"].get("slots") or ():
            work.append(free_slot(ctx, str(slot["subject"]), int(slot["rev"])))
    if change.finished and change.record["sys"].get("unique"):
        work.append(_settle_lock(ctx, change.record, change.after, retention_s))
    return work


async def free_slot(ctx: Context, subject: str, revision: int) -> None:
    try:
        await ctx.storage.limits.free_slot(subject, revision)
    except Exception:  # the slot is reclaimed lazily when someone needs it
        log.warning("could not free concurrency slot %s", subject, exc_info=True)


def tick(change: jobs.Change) -> str | None:
    """The throughput counter an attempt ending in `change` adds to, if it ended."""
    if change.after == State.COMPLETED:
        return "completed"
    if any(e.type == "job.failed" for e in change.events):
        return "failed"
    return None


async def _settle_lock(
    ctx: Context, record: jobs.Record, state: State, retention_s: int | None
) -> None:
    """A unique job finished: drop its lock, or keep it (with an end) if the state still counts.

    A finished state in the policy's `states` (e.g. `completed`) keeps blocking duplicates for
    the rest of the `period`, or, without one, as long as the finished job is retained; the lock
    remembers the final state so the check works even after the record is gone.
    """
    held = record["sys"]["unique"]
    policy = UniquePolicy.from_record(held["policy"])
    locks = ctx.storage.unique
    try:
        if state not in policy.states:
            await locks.release(str(held["key"]), int(held["rev"]))
            return
        created = ids.parse_ts(str(record["job"]["created_at"]))
        now = ctx.clock()
        if policy.period_ms is not None:
            ttl = math.ceil((created + policy.period_ms - now) / 1000)
            if ttl <= 0:
                await locks.release(str(held["key"]), int(held["rev"]))
                return
        else:
            ttl = retention_s or 0
        value = {"job": record["job"]["id"], "at": now, "created_ms": created, "final": str(state)}
        await locks.put(str(held["key"]), value, int(held["rev"]), ttl or None)
    except RevisionConflict:
        pass  # the key was taken over by a newer job: nothing of ours to settle
    except Exception:
        log.warning(
            "could not settle the uniqueness lock of %s", record["job"]["id"], exc_info=True
        )
