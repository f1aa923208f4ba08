"""Unique jobs at enqueue time (ojs-unique-jobs.md): claim the uniqueness key or resolve the
conflict. The lock in `<NS>_UNIQUE` names the holding job; whether it still holds the key is
judged from that job (state and age, §7.4), and a free or lapsed key is taken by create-if-absent
or compare-and-set, so of concurrent enqueues on any replicas exactly one wins (strong, §8.1).
Write order: lock, (replace: cancel the old job), then the job's own writes (`apply.commit`).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import math
from typing import Any

from ojs_nats.errors import ConflictError, DuplicateError, NotFoundError
from ojs_nats.model import ids, unique
from ojs_nats.model import job as jobs
from ojs_nats.model.envelope import Submission
from ojs_nats.model.lifecycle import TERMINAL, State
from ojs_nats.service.apply import transition
from ojs_nats.service.context import Context
from ojs_nats.storage import RevisionConflict
from ojs_nats.storage.kv import Entry

#: A lock whose job has no record yet is an enqueue in flight for this long (then: a leftover
#: of a crash). Same bound as for ready entries and timers.
IN_FLIGHT_GRACE_MS = 30_000
#: `ignore`/`replace` against an enqueue in flight wait for its record this long, polling.
IN_FLIGHT_WAIT_MS = 2_000
IN_FLIGHT_POLL_MS = 20
MAX_ATTEMPTS = 150


@dataclasses.dataclass(slots=True)
class Admission:
    """What PUSH does next: create the job (holding `lock`), or answer with `existing`."""

    submission: Submission
    lock: dict[str, Any] | None = None
    existing: dict[str, Any] | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class _Holder:
    job_id: str
    state: str | None
    created_ms: int
    record: jobs.Record | None
    in_flight: bool


def key_of(sub: Submission) -> tuple[unique.UniquePolicy, str] | None:
    """The job's policy and uniqueness key (validates `args_keys` against the args)."""
    policy = unique.parse_policy(sub.job.get("unique"))
    if policy is None:
        return None
    job = sub.job
    return policy, unique.fingerprint(policy, job["type"], job["queue"], job["args"], job["meta"])


async def admit(ctx: Context, sub: Submission, now: int) -> Admission:
    """Claim the job's uniqueness key, or apply `on_conflict` (raises 409 for `reject`)."""
    found = key_of(sub)
    if found is None:
        return Admission(sub)
    policy, key = found
    waited = 0
    for _ in range(MAX_ATTEMPTS):
        entry = await ctx.storage.unique.get(key)
        holder = await _holder(ctx, entry, sub, now) if entry.value is not None else None
        if holder is None or (not holder.in_flight and not _holds(policy, holder, now)):
            lock = await _claim(ctx, sub, policy, key, entry, now)
            if lock is not None:
                return Admission(sub, lock)
            continue
        if policy.on_conflict == "reject":
            raise _duplicate(key, holder)
        if holder.in_flight:
            if waited >= IN_FLIGHT_WAIT_MS:
                break
            await asyncio.sleep(IN_FLIGHT_POLL_MS / 1000)
            waited += IN_FLIGHT_POLL_MS
            continue
        if policy.on_conflict == "ignore":
            existing = holder.record["job"] if holder.record else {}
            return Admission(sub, existing={"id": holder.job_id, "state": holder.state, **existing})
        admission = await _replace(ctx, sub, policy, key, entry, holder, now)
        if admission is not None:
            return admission
    raise ConflictError(
        "A job with the same uniqueness key is being enqueued concurrently; retry the request.",
        uniqueness_key=key,
    )


async def release(ctx: Context, lock: dict[str, Any] | None) -> None:
    """Give back a lock whose job was not created after all (best effort)."""
    if lock is not None:
        await ctx.storage.unique.release(str(lock["key"]), int(lock["rev"]))


async def _claim(
    ctx: Context,
    sub: Submission,
    policy: unique.UniquePolicy,
    key: str,
    entry: Entry,
    now: int,
) -> dict[str, Any] | None:
    value = {"job": sub.id, "at": now, "created_ms": now}
    ttl = math.ceil(policy.period_ms / 1000) if policy.period_ms else None
    try:
        revision = await ctx.storage.unique.put(key, value, entry.revision, ttl)
    except RevisionConflict:
        return None
    return {"key": key, "rev": revision, "policy": policy.to_record()}


async def _replace(
    ctx: Context,
    sub: Submission,
    policy: unique.UniquePolicy,
    key: str,
    entry: Entry,
    holder: _Holder,
    now: int,
) -> Admission | None:
    """Take the key over first (so concurrent replacers serialize), then cancel the old job."""
    lock = await _claim(ctx, sub, policy, key, entry, now)
    if lock is None:
        return None
    if holder.state not in TERMINAL:
        # It may have finished or vanished meanwhile: then there is nothing left to replace.
        with contextlib.suppress(ConflictError, NotFoundError):
            await transition(ctx, holder.job_id, jobs.cancel)
    if (
        policy.on_conflict == "replace_except_schedule"
        and holder.state == State.SCHEDULED
        and holder.record is not None
    ):
        sub = _keep_schedule(sub, holder.record)
    return Admission(sub, lock)


def _keep_schedule(sub: Submission, old: jobs.Record) -> Submission:
    """The new job runs when the replaced one was due to (§5.3)."""
    job = dict(sub.job)
    job["scheduled_at"] = old["job"].get("scheduled_at")
    return dataclasses.replace(sub, job=job, scheduled_ms=old["sys"].get("scheduled_ms"))


async def _holder(ctx: Context, entry: Entry, sub: Submission, now: int) -> _Holder | None:
    """The job named by a lock, or None if the lock is a leftover that no longer counts."""
    assert entry.value is not None
    lock = entry.value
    job_id = str(lock["job"])
    stored = await ctx.storage.jobs.get(job_id)
    if stored is not None:
        record = stored.record
        created = ids.parse_ts(str(record["job"]["created_at"]))
        return _Holder(job_id, str(record["job"]["state"]), created, record, in_flight=False)
    created = int(lock.get("created_ms", lock.get("at", now)))
    if lock.get("final"):  # finished, and its record is no longer kept
        return _Holder(job_id, str(lock["final"]), created, None, in_flight=False)
    if job_id != sub.id and now - int(lock.get("at", 0)) < IN_FLIGHT_GRACE_MS:
        return _Holder(job_id, None, created, None, in_flight=True)
    # The enqueue that took the lock never wrote its job (a crash, or this very job retried).
    return None


def _holds(policy: unique.UniquePolicy, holder: _Holder, now: int) -> bool:
    return holder.state is not None and unique.holds(policy, holder.state, holder.created_ms, now)


def _duplicate(key: str, holder: _Holder) -> DuplicateError:
    return DuplicateError(
        "A job matching the uniqueness key already exists.",
        existing_job_id=holder.job_id,
        existing_job_state=holder.state or "enqueueing",
        uniqueness_key=key,
    )
