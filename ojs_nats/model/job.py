"""The stored job record and every transition of it, as pure functions of (record, now).

A record is `{"job": <wire job>, "sys": <server bookkeeping>}`: `job` is exactly what INFO returns,
`sys` holds what the server needs and never shows: the lease, the normalized retry policy, times
in epoch milliseconds, and `step`, which grows by one on every state change. Ready entries and
timers are tagged with the step they were made for, so a stale one is recognised and ignored.
Each transition returns a `Change` that tells the service layer which writes to make; the service
orders them and applies them with compare-and-set. Nothing here does I/O or reads the clock.
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Callable, Mapping
from typing import Any

import orjson

from ojs_nats.errors import ConflictError, InvalidRequestError
from ojs_nats.model import ids, lifecycle
from ojs_nats.model.envelope import Submission
from ojs_nats.model.lifecycle import State
from ojs_nats.model.retry import RetryPolicy, delay_ms, matches_non_retryable

Record = dict[str, Any]
#: Error history kept per job (the spec asks for at least 10).
MAX_ERRORS = 50
#: Handler response codes that override the retry policy (ojs-retry.md §7).
DISCARD_CODES = frozenset({"DISCARD", "FAIL"})
DEAD_LETTER_CODE = "DEAD_LETTER"
#: A heartbeat deadline (a job's stall deadline, a worker's liveness) that passed this long
#: before a timer looked at it was missed by the server, not by the worker: see
#: `_stall_overlooked` and service/liveness.py.
OVERLOOKED_MS = 15_000
#: `worker_id` of `job.started` / `job.heartbeat` events when the worker named none (the field is
#: required by ojs-events.md §4.1, but FETCH and heartbeats may leave the worker anonymous).
ANONYMOUS_WORKER = "anonymous"


@dataclasses.dataclass(slots=True)
class Event:
    type: str
    data: dict[str, Any]


@dataclasses.dataclass(slots=True)
class Change:
    """One legal transition, and the side effects the service must write for it."""

    record: Record
    before: State | None
    after: State
    events: list[Event]
    #: Make the job fetchable: publish a ready entry for the record's step.
    ready: bool = False
    #: When the job must next be looked at by a timer (None: no timer needed).
    wake_at: int | None = None
    #: Add to (True) or remove from (False) the dead-letter index.
    dead_letter: bool | None = None

    @property
    def job(self) -> dict[str, Any]:
        return dict(self.record["job"])

    @property
    def step(self) -> int:
        return int(self.record["sys"]["step"])

    @property
    def finished(self) -> bool:
        return self.after in lifecycle.TERMINAL


# ---------------------------------------------------------------- creation


def new_record(sub: Submission, now: int) -> Change:
    """The record of a freshly pushed job, in its first state."""
    state = sub.initial_state(now)
    job = dict(sub.job)
    job["state"] = str(state)
    job["created_at"] = job["enqueued_at"] = ids.format_ts(now)
    sys: dict[str, Any] = {
        "step": 1,
        "policy": sub.policy.to_record(),
        "vis_ms": sub.visibility_ms,
        "hb_ms": sub.heartbeat_ms,
        "timeout_ms": sub.timeout_ms,
        "scheduled_ms": sub.scheduled_ms if state is State.SCHEDULED else None,
        "expires_ms": sub.expires_ms,
        "next_attempt_ms": None,
        "lease": None,
        "dead": False,
        "ready_seq": None,
    }
    record = {"job": job, "sys": sys}
    events = [
        Event("job.scheduled", {"scheduled_at": job.get("scheduled_at")})
        if state is State.SCHEDULED
        else Event("job.enqueued", {})
    ]
    return Change(
        record, None, state, events, ready=state is State.AVAILABLE, wake_at=next_wake(record)
    )


# ---------------------------------------------------------------- worker operations


def claim(
    record: Record,
    now: int,
    worker_id: str | None,
    visibility_ms: int,
    timeout_ms: int | None,
    grouped: bool = False,
    heartbeat_ms: int | None = None,
) -> Change:
    """available -> active: the fetcher takes the job (one more attempt).

    `grouped`: the lease is watched by the fetch's shared lease timer (see service/leases.py),
    so the change asks for no timer of its own. `heartbeat_ms`: the job stalls when no heartbeat
    (or progress report) arrives for that long (ojs-timeouts.md §5.5; None: never).
    """
    before = _state(record)
    lifecycle.check(before, State.ACTIVE, _id(record), "fetch")
    rec = _next_step(record)
    job, sys = rec["job"], rec["sys"]
    job["state"] = State.ACTIVE.value
    job["attempt"] = int(job.get("attempt", 0)) + 1
    job["started_at"] = ids.format_ts(now)
    for key in ("completed_at", "next_attempt_at", "discarded_at", "cancelled_at"):
        job.pop(key, None)
    if worker_id:
        job["worker_id"] = worker_id
    else:
        job.pop("worker_id", None)
    limit = timeout_ms if timeout_ms else None
    sys["lease"] = {
        "worker": worker_id,
        "visibility_ms": visibility_ms,
        "deadline": now + visibility_ms,
        "exec_deadline": now + limit if limit else None,
        "started_ms": now,
    }
    if heartbeat_ms:
        # The heartbeat clock starts at the claim; BEAT and progress reset it (`extend`).
        sys["lease"]["beat_ms"] = now
        sys["lease"]["stall_ms"] = heartbeat_ms
    if grouped:
        sys["lease"]["grouped"] = True
    sys["ready_seq"] = None
    sys["scheduled_ms"] = None
    sys["next_attempt_ms"] = None
    event = Event(
        "job.started", {"worker_id": worker_id or ANONYMOUS_WORKER, "attempt": job["attempt"]}
    )
    return Change(rec, before, State.ACTIVE, [event], wake_at=own_timer(rec))


def complete(record: Record, now: int, result: Any, worker_id: str | None) -> Change:
    """active -> completed."""
    before = _state(record)
    lifecycle.check(before, State.COMPLETED, _id(record), "acknowledge")
    _check_owner(record, worker_id)
    rec = _next_step(record)
    job, sys = rec["job"], rec["sys"]
    duration = now - int((sys.get("lease") or {}).get("started_ms") or now)
    job["state"] = State.COMPLETED.value
    job["completed_at"] = ids.format_ts(now)
    job.pop("error", None)
    if result is not None:
        job["result"] = result
    sys["lease"] = None
    event = Event(
        "job.completed", {"duration_ms": duration, "attempt": job.get("attempt"), "result": result}
    )
    return Change(rec, before, State.COMPLETED, [event])


def fail(
    record: Record,
    now: int,
    error: Mapping[str, Any],
    worker_id: str | None,
    requeue: bool = False,
    uniform: Callable[[float, float], float] = random.uniform,
) -> Change:
    """active -> retryable | discarded | available (requeue), following the retry policy."""
    before = _state(record)
    if requeue:
        lifecycle.check(before, State.AVAILABLE, _id(record), "requeue")
        _check_owner(record, worker_id)
        return _make_available(record, before, now, Event("job.requeued", {"reason": "nack"}))
    lifecycle.check(before, State.RETRYABLE, _id(record), "fail")
    _check_owner(record, worker_id)
    return _apply_failure(record, before, now, error, uniform)


def extend(
    record: Record,
    now: int,
    worker_id: str | None,
    visibility_ms: int | None,
    default_visibility_ms: int,
) -> Change:
    """Heartbeat: push the lease deadline of an active job to now + its visibility timeout."""
    before = _state(record)
    if before != State.ACTIVE:
        raise ConflictError(
            f"Job {_id(record)} is '{before}', not active.",
            job_id=_id(record),
            current_state=before,
        )
    # A worker declared dead and back must not keep alive a job another worker now holds.
    _check_owner(record, worker_id)
    rec = _copy(record)
    lease = rec["sys"]["lease"] or {}
    period = visibility_ms or lease.get("visibility_ms") or default_visibility_ms
    lease["deadline"] = now + int(period)
    if lease.get("stall_ms"):
        lease["beat_ms"] = now
    rec["sys"]["lease"] = lease
    event = Event(
        "job.heartbeat",
        {
            "worker_id": worker_id or lease.get("worker") or ANONYMOUS_WORKER,
            "attempt": rec["job"].get("attempt"),
            "visible_until": ids.format_ts(lease["deadline"]),
        },
    )
    # No new timer: the pending one fires at the old deadline (or stall deadline), sees the
    # later one and re-arms.
    return Change(rec, before, State.ACTIVE, [event])


def cancel(record: Record, now: int) -> Change:
    """Any non-terminal state -> cancelled (active jobs included, as the suites require)."""
    before = _state(record)
    lifecycle.check(before, State.CANCELLED, _id(record), "cancel")
    rec = _next_step(record)
    job = rec["job"]
    job["state"] = State.CANCELLED.value
    job["cancelled_at"] = ids.format_ts(now)
    rec["sys"]["lease"] = None
    event = Event(
        "job.cancelled",
        {"cancelled_by": "api", "reason": "cancel requested", "previous_state": before},
    )
    return Change(rec, before, State.CANCELLED, [event])


def drop(record: Record, now: int, code: str, message: str) -> Change:
    """A waiting job is discarded without running (backpressure drop-oldest, rate-limit drop)."""
    before = _state(record)
    if before not in lifecycle.WAITING:
        raise ConflictError(
            f"Cannot drop job {_id(record)} in state '{before}'.",
            job_id=_id(record),
            current_state=before,
        )
    rec = _next_step(record)
    job = rec["job"]
    job["state"] = State.DISCARDED.value
    job["discarded_at"] = ids.format_ts(now)
    error = {"code": code, "type": code, "message": message, "retryable": False}
    job["error"] = error
    entry = error_entry(error, int(job.get("attempt", 0)), now)
    job["errors"] = [*(job.get("errors") or []), entry][-MAX_ERRORS:]
    event = Event("job.discarded", {"reason": code, "last_error": error, "dead_letter": False})
    return Change(rec, before, State.DISCARDED, [event])


def activate(record: Record, now: int) -> Change:
    """pending -> available (ACTIVATE)."""
    before = _state(record)
    if before != State.PENDING:
        raise ConflictError(
            f"Cannot activate job {_id(record)} in state '{before}'. Only pending jobs can be "
            "activated.",
            job_id=_id(record),
            current_state=before,
        )
    return _make_available(record, before, now, Event("job.enqueued", {}))


def retry_dead(record: Record, now: int) -> Change:
    """discarded (dead-lettered) -> available with the attempt counter reset."""
    before = _state(record)
    if before != State.DISCARDED or not record["sys"].get("dead"):
        raise ConflictError(
            f"Job {_id(record)} is not in the dead-letter queue.",
            job_id=_id(record),
            current_state=before,
        )
    change = _make_available(record, before, now, Event("job.enqueued", {"reason": "dlq_retry"}))
    job = change.record["job"]
    job["attempt"] = 0
    # ojs-dead-letter.md §6.1: a retried dead-letter job gets a new `enqueued_at`.
    job["enqueued_at"] = job["re_enqueued_at"] = ids.format_ts(now)
    for key in ("discarded_at", "completed_at", "next_attempt_at", "retry_delay_ms"):
        job.pop(key, None)
    change.record["sys"]["dead"] = False
    change.dead_letter = False
    return change


def add_follower(record: Record, action: Mapping[str, Any]) -> Change | None:
    """Ask to run `action` when this job finishes; None if it has finished already.

    Followers are kept in `sys.on_finish`; the transition that ends the job arms a
    `finished` timer, whose handler runs them (so a crash cannot lose them).
    """
    state = _state(record)
    if state in lifecycle.TERMINAL:
        return None
    rec = _copy(record)
    rec["sys"]["on_finish"] = [*(rec["sys"].get("on_finish") or []), dict(action)]
    return Change(rec, state, state, [])


# ---------------------------------------------------------------- timers


def timer_key(record: Record) -> str:
    """The key of the job's timer for its current step: `<job id>.<step>`."""
    return f"{_id(record)}.{int(record['sys']['step'])}"


def parse_timer_key(key: str) -> tuple[str, int]:
    job_id, _, step = key.rpartition(".")
    return job_id, int(step)


def own_timer(record: Record) -> int | None:
    """When the job's *own* timer must fire: `next_wake`, except for a lease that a shared
    lease timer watches (nothing to arm or disarm per job then)."""
    if _state(record) == State.ACTIVE and (record["sys"].get("lease") or {}).get("grouped"):
        return None
    return next_wake(record)


def next_wake(record: Record) -> int | None:
    """When a timer must next look at this job, or None if nothing is pending in time."""
    state = _state(record)
    sys = record["sys"]
    candidates: list[int] = []
    if state == State.ACTIVE:
        lease = sys.get("lease") or {}
        deadlines = (lease.get("deadline"), lease.get("exec_deadline"), stall_deadline(lease))
        candidates += [t for t in deadlines if t]
    elif state == State.SCHEDULED and sys.get("scheduled_ms") is not None:
        candidates.append(int(sys["scheduled_ms"]))
    elif state == State.RETRYABLE and sys.get("next_attempt_ms") is not None:
        candidates.append(int(sys["next_attempt_ms"]))
    if state in lifecycle.WAITING and sys.get("expires_ms") is not None:
        candidates.append(int(sys["expires_ms"]))
    return min(candidates) if candidates else None


def on_wake(
    record: Record, now: int, uniform: Callable[[float, float], float] = random.uniform
) -> Change | None:
    """What a fired timer does to the job at `now`; None when nothing is due yet."""
    state = _state(record)
    sys = record["sys"]
    expires = sys.get("expires_ms")
    if state in lifecycle.WAITING and expires is not None and now >= expires:
        return _expire(record, state, now)
    if state == State.SCHEDULED and now >= int(sys.get("scheduled_ms") or 0):
        return _make_available(record, state, now, Event("job.enqueued", {}))
    if state == State.RETRYABLE and now >= int(sys.get("next_attempt_ms") or 0):
        return _make_available(record, state, now, Event("job.enqueued", {"reason": "retry"}))
    if state == State.ACTIVE:
        lease = sys.get("lease") or {}
        if lease.get("exec_deadline") and now >= lease["exec_deadline"]:
            started = lease.get("started_ms", lease["exec_deadline"])
            limit = lease["exec_deadline"] - started
            return _timed_out(
                record,
                state,
                now,
                uniform,
                ("timeout", "execution", "job.timeout"),
                limit,
                now - started,
                f"Job exceeded its execution timeout of {limit} ms.",
            )
        stall = stall_deadline(lease)
        deadline = int(lease.get("deadline") or 0)
        # Of a missed heartbeat and an expired lease, the one that happened first decides.
        if stall is not None and now >= stall and stall <= deadline:
            if now - stall > OVERLOOKED_MS:
                return _stall_overlooked(record, now)
            return _stalled(record, state, now, uniform)
        if now >= deadline:
            return _visibility_expired(record, state, now, uniform)
    return None


def _stall_overlooked(record: Record, now: int) -> Change:
    """A stall deadline that passed long before any timer looked: the server was not watching
    (an outage), so the worker's heartbeats may have been lost on the server's side. Rather than
    fail a job that may well be running (and have it run twice), give it a fresh window."""
    rec = _copy(record)
    lease = rec["sys"]["lease"]
    lease["beat_ms"] = now
    lease["grouped"] = False  # watched by its own timer from now on
    return Change(rec, State.ACTIVE, State.ACTIVE, [], wake_at=next_wake(rec))


def stall_deadline(lease: Mapping[str, Any]) -> int | None:
    """When an active job counts as stalled: its last heartbeat + its heartbeat timeout."""
    if not lease.get("stall_ms"):
        return None
    return int(lease.get("beat_ms") or lease.get("started_ms") or 0) + int(lease["stall_ms"])


# ---------------------------------------------------------------- helpers


#: Timeout details kept on a timeout-induced error (ojs-timeouts.md §8).
_TIMEOUT_FIELDS = ("timeout_kind", "limit_seconds", "elapsed_seconds")
#: The fields of `errors[]` entries that the job's current `error` repeats.
_ERROR_FIELDS = ("code", "type", "message", "retryable", "details", *_TIMEOUT_FIELDS)


def _apply_failure(
    record: Record,
    before: State,
    now: int,
    error: Mapping[str, Any],
    uniform: Callable[[float, float], float],
) -> Change:
    rec = _next_step(record)
    job, sys = rec["job"], rec["sys"]
    policy = RetryPolicy.from_record(sys["policy"])
    attempt = int(job.get("attempt", 0))
    entry = error_entry(error, attempt, now)
    job["error"] = {k: entry[k] for k in _ERROR_FIELDS if k in entry}
    job["errors"] = [*(job.get("errors") or []), entry][-MAX_ERRORS:]
    sys["lease"] = None
    code = str(error.get("code") or "")
    exhausted = attempt >= max(policy.max_attempts, 1)
    permanent = (
        error.get("retryable") is False
        or code in DISCARD_CODES
        or code == DEAD_LETTER_CODE
        or matches_non_retryable(policy, entry.get("type"))
        or matches_non_retryable(policy, code)
    )
    # job.failed requires `error.retryable` (ojs-events.md §4): the worker's flag, else whether
    # the error itself allows a retry (attempts running out does not make it permanent).
    reported = {**job["error"], "retryable": job["error"].get("retryable", not permanent)}
    failed = Event("job.failed", {"attempt": attempt, "error": reported})
    if exhausted or permanent:
        dead = code == DEAD_LETTER_CODE or (
            code not in DISCARD_CODES and policy.on_exhaustion == "dead_letter"
        )
        return _discard(rec, before, now, failed, dead)
    wait = delay_ms(policy, attempt, uniform)
    sys["next_attempt_ms"] = now + wait
    job["state"] = State.RETRYABLE.value
    job["retry_delay_ms"] = wait
    job["next_attempt_at"] = ids.format_ts(now + wait)
    retrying = Event(
        "job.retrying",
        {
            "attempt": attempt,
            "max_attempts": policy.max_attempts,
            "next_retry_at": job["next_attempt_at"],
            "error": job["error"],
        },
    )
    return Change(rec, before, State.RETRYABLE, [failed, retrying], wake_at=now + wait)


def _discard(rec: Record, before: State, now: int, failed: Event, dead: bool) -> Change:
    job = rec["job"]
    job["state"] = State.DISCARDED.value
    job["discarded_at"] = ids.format_ts(now)
    job["completed_at"] = job["discarded_at"]
    job.pop("next_attempt_at", None)
    rec["sys"]["dead"] = dead
    discarded = Event(
        "job.discarded",
        {"total_attempts": job.get("attempt"), "last_error": job.get("error"), "dead_letter": dead},
    )
    return Change(
        rec, before, State.DISCARDED, [failed, discarded], dead_letter=True if dead else None
    )


def _visibility_expired(
    record: Record, before: State, now: int, uniform: Callable[[float, float], float]
) -> Change:
    """A lease ran out without ACK or NACK: the worker is presumed dead."""
    policy = RetryPolicy.from_record(record["sys"]["policy"])
    attempt = int(record["job"].get("attempt", 0))
    error = {
        "code": "visibility_timeout",
        "type": "visibility_timeout",
        "retryable": True,
        "message": "The job's visibility timeout expired before it was acknowledged.",
    }
    if attempt >= max(policy.max_attempts, 1):
        return _apply_failure(record, before, now, error, uniform)
    # Attempts remain: the job is available again at once (the suites require plain
    # `available`, not a backoff), and the lost attempt is kept in the error history.
    change = _make_available(
        record, before, now, Event("job.requeued", {"reason": "visibility_timeout"})
    )
    job = change.record["job"]
    entry = error_entry(error, attempt, now)
    job["errors"] = [*(job.get("errors") or []), entry][-MAX_ERRORS:]
    return change


def _stalled(
    record: Record, before: State, now: int, uniform: Callable[[float, float], float]
) -> Change:
    """No heartbeat within the heartbeat timeout (ojs-timeouts.md §5.5, §7.3, §8): the attempt
    fails with error type `stalled`, retried by the retry policy (retryable, then available)
    or discarded when exhausted, and `job.stalled` is emitted."""
    lease = record["sys"].get("lease") or {}
    limit = int(lease["stall_ms"])
    last = int(lease.get("beat_ms") or lease.get("started_ms") or now)
    return _timed_out(
        record,
        before,
        now,
        uniform,
        ("stalled", "stalled", "job.stalled"),
        limit,
        now - last,
        f"No heartbeat for {now - last} ms (heartbeat timeout {limit} ms).",
        worker_id=lease.get("worker"),
        last_heartbeat_at=ids.format_ts(last),
    )


def _timed_out(
    record: Record,
    before: State,
    now: int,
    uniform: Callable[[float, float], float],
    kind: tuple[str, str, str],
    limit_ms: int,
    elapsed_ms: int,
    message: str,
    **event_data: Any,
) -> Change:
    """A timeout failed the attempt. `kind`: (error code and type, `timeout_kind`, event).

    The stored error carries the kind and the limit and elapsed time (ojs-timeouts.md §8), and
    the timeout's own event comes before `job.failed` (§11.1)."""
    code, timeout_kind, event = kind
    seconds = {"limit_seconds": limit_ms / 1000, "elapsed_seconds": elapsed_ms / 1000}
    error = {
        "code": code,
        "type": code,
        "retryable": True,
        "message": message,
        "timeout_kind": timeout_kind,
        **seconds,
    }
    change = _apply_failure(record, before, now, error, uniform)
    data = {"timeout_kind": timeout_kind, **seconds, "attempt": change.record["job"].get("attempt")}
    change.events.insert(0, Event(event, {**data, **event_data}))
    return change


def worker_lost(
    record: Record,
    now: int,
    worker_id: str,
    last_beat_ms: int,
    limit_ms: int,
    uniform: Callable[[float, float], float] = random.uniform,
) -> Change | None:
    """The job's worker was declared dead (ojs-worker-protocol.md §10.2): an active job it
    claimed before its last heartbeat is available again at once (or discarded when no attempt
    is left), with a `worker_death` error in its history; None when the job is not its any more.
    """
    before = _state(record)
    lease = record["sys"].get("lease") or {}
    if (
        before != State.ACTIVE
        or lease.get("worker") != worker_id
        or int(lease.get("started_ms") or 0) > last_beat_ms
    ):
        return None
    silent = now - last_beat_ms
    error = {
        "code": "worker_death",
        "type": "worker_death",
        "retryable": True,
        "message": f"Worker {worker_id} sent no heartbeat for {silent} ms and was declared dead.",
        "details": {"worker_id": worker_id},
    }
    attempt = int(record["job"].get("attempt", 0))
    stalled = Event(
        "job.stalled",
        {
            "timeout_kind": "stalled",
            "reason": "worker_death",
            "limit_seconds": limit_ms / 1000,
            "elapsed_seconds": silent / 1000,
            "attempt": attempt,
            "worker_id": worker_id,
            "last_heartbeat_at": ids.format_ts(last_beat_ms),
        },
    )
    policy = RetryPolicy.from_record(record["sys"]["policy"])
    if attempt >= max(policy.max_attempts, 1):
        change = _apply_failure(record, before, now, error, uniform)
    else:
        # As for an expired lease: available at once, the lost attempt kept in the history.
        change = _make_available(
            record, before, now, Event("job.requeued", {"reason": "worker_death"})
        )
        job = change.record["job"]
        job["errors"] = [*(job.get("errors") or []), error_entry(error, attempt, now)][-MAX_ERRORS:]
    change.events.insert(0, stalled)
    return change


def _expire(record: Record, before: State, now: int) -> Change:
    rec = _next_step(record)
    job = rec["job"]
    job["state"] = State.DISCARDED.value
    job["discarded_at"] = ids.format_ts(now)
    job.pop("completed_at", None)
    created = ids.parse_ts(job["created_at"]) if "created_at" in job else now
    event = Event(
        "job.expired",
        {
            "created_at": job.get("created_at"),
            "expired_at": job["discarded_at"],
            "ttl_ms": int(rec["sys"]["expires_ms"]) - created,
        },
    )
    return Change(rec, before, State.DISCARDED, [event])


def _make_available(record: Record, before: State, now: int, event: Event) -> Change:
    rec = _next_step(record)
    job, sys = rec["job"], rec["sys"]
    job["state"] = State.AVAILABLE.value
    job.pop("next_attempt_at", None)
    sys["lease"] = None
    sys["scheduled_ms"] = None
    sys["next_attempt_ms"] = None
    return Change(rec, before, State.AVAILABLE, [event], ready=True, wake_at=next_wake(rec))


def error_entry(error: Mapping[str, Any], attempt: int, now: int) -> dict[str, Any]:
    """One element of `errors[]`: the worker's error plus attempt number and time."""
    details = error.get("details")
    entry: dict[str, Any] = {
        "code": str(error.get("code") or "handler_error"),
        "type": error_type(error),
        "message": str(error.get("message") or ""),
        "attempt": attempt,
        "occurred_at": ids.format_ts(now),
    }
    if isinstance(error.get("retryable"), bool):
        entry["retryable"] = error["retryable"]
    if isinstance(details, Mapping):
        entry["details"] = dict(details)
    if "backtrace" in error or "stack" in error:
        entry["backtrace"] = error.get("backtrace", error.get("stack"))
    for key in _TIMEOUT_FIELDS:
        if key in error:
            entry[key] = error[key]
    return entry


# When a worker reports no error type, derive one from well-known message wording so that
# `errors[].type` stays useful for grouping; an explicit type always wins.
_MESSAGE_KINDS: tuple[tuple[tuple[str, ...], str], ...] = (
    (("connection timed out", "connection timeout"), "ConnectionTimeout"),
    (("timed out", "timeout"), "Timeout"),
    (("rate limit", "too many requests"), "RateLimitExceeded"),
    (("connection refused", "connection reset"), "ConnectionError"),
    (("not found",), "NotFound"),
    (("permission denied", "unauthorized", "forbidden"), "PermissionDenied"),
)


def error_type(error: Mapping[str, Any]) -> str:
    """The error's type: explicit `type`, else `details.error_class`, else from the message."""
    explicit = error.get("type")
    if isinstance(explicit, str) and explicit:
        return explicit
    details = error.get("details")
    if isinstance(details, Mapping) and isinstance(details.get("error_class"), str):
        return str(details["error_class"])
    message = str(error.get("message") or "").lower()
    if "connection" in message and ("timed out" in message or "timeout" in message):
        return "ConnectionTimeout"
    for words, kind in _MESSAGE_KINDS:
        if any(w in message for w in words):
            return kind
    return "InternalServerError"


def validate_error(raw: object) -> dict[str, Any]:
    """The `error` object of a NACK request."""
    if raw is None:
        return {"code": "handler_error", "message": "Handler failed (no error reported)."}
    if not isinstance(raw, Mapping):
        raise InvalidRequestError("The 'error' field must be an object.", field="error")
    if "message" in raw and not isinstance(raw["message"], str):
        raise InvalidRequestError(
            "The 'error.message' field must be a string.", field="error.message"
        )
    if "code" in raw and not isinstance(raw["code"], str):
        raise InvalidRequestError("The 'error.code' field must be a string.", field="error.code")
    if (
        "retryable" in raw
        and raw["retryable"] is not None
        and not isinstance(raw["retryable"], bool)
    ):
        raise InvalidRequestError(
            "The 'error.retryable' field must be a boolean.", field="error.retryable"
        )
    if raw.get("details") is not None and not isinstance(raw["details"], Mapping):
        raise InvalidRequestError(
            "The 'error.details' field must be an object.", field="error.details"
        )
    return dict(raw)


def _check_owner(record: Record, worker_id: str | None) -> None:
    """Refuse ACK/NACK from a worker other than the one holding the lease."""
    lease = record["sys"].get("lease") or {}
    holder = lease.get("worker")
    if worker_id and holder and worker_id != holder:
        raise ConflictError(
            f"Job {_id(record)} is reserved by another worker.",
            job_id=_id(record),
            worker_id=worker_id,
            reserved_by=holder,
        )


def _state(record: Record) -> State:
    return State(record["job"]["state"])


def _id(record: Record) -> str:
    return str(record["job"]["id"])


def _copy(record: Record) -> Record:
    # `sys` holds only JSON values (it is stored as JSON): a JSON round trip copies it deeply at
    # a fifth of deepcopy's cost, which showed in every transition's profile.
    return {"job": dict(record["job"]), "sys": orjson.loads(orjson.dumps(record["sys"]))}


def _next_step(record: Record) -> Record:
    """A copy of the record for a state change: its step moves on by one."""
    rec = _copy(record)
    rec["sys"]["step"] = int(rec["sys"].get("step", 0)) + 1
    return rec
