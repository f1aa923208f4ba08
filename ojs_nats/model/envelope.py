"""Validation of an enqueue request into a `Submission` (ojs-core.md §5, ojs-http-binding.md §9.1).

Accepts both spellings the documents use: envelope fields at the top level (core) and inside
`options` (HTTP binding); `options` wins when both are given. Unknown top-level fields are kept and
echoed; system-managed fields sent by a client are dropped. Each failure raises an OJS error that
names the field, before anything is stored.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Mapping
from typing import Any

from ojs_nats.errors import InvalidRequestError
from ojs_nats.model import ids, rates, unique
from ojs_nats.model.durations import parse_duration_ms
from ojs_nats.model.lifecycle import State
from ojs_nats.model.retry import DEFAULT_POLICY, RetryPolicy, parse_policy

TYPE_RE = re.compile(r"^[a-z][a-z0-9_\-]*(\.[a-z][a-z0-9_\-]*)*$")
QUEUE_RE = re.compile(r"^[a-z0-9][a-z0-9\-.]*$")
MAX_TYPE_LEN = 255
MAX_QUEUE_LEN = 128
MIN_PRIORITY, MAX_PRIORITY = -100, 100
DEFAULT_QUEUE = "default"

#: Fields the server manages; a client's values for them are ignored (ojs-core.md §5.3).
SYSTEM_FIELDS = frozenset(
    {
        "state",
        "attempt",
        "max_attempts",
        "created_at",
        "enqueued_at",
        "started_at",
        "completed_at",
        "cancelled_at",
        "discarded_at",
        "next_attempt_at",
        "retry_delay_ms",
        "error",
        "errors",
        "result",
        "parent_results",
        "worker_id",
        "previous_state",
        "workflow_id",
    }
)
#: Envelope fields understood at the top level.
ENVELOPE_FIELDS = frozenset(
    {
        "specversion",
        "id",
        "type",
        "queue",
        "args",
        "meta",
        "priority",
        "timeout",
        "timeout_ms",
        "scheduled_at",
        "delay_until",
        "expires_at",
        "retry",
        "unique",
        "schema",
        "tags",
        "visibility_timeout",
        "visibility_timeout_ms",
        "heartbeat_timeout",
        "heartbeat_timeout_ms",
        "options",
        "pending",
        "rate_limit",
    }
)


_NOT_ECHOED = ENVELOPE_FIELDS | SYSTEM_FIELDS


@dataclasses.dataclass(frozen=True, slots=True)
class Submission:
    """A validated enqueue request."""

    #: The wire job as created (state and timestamps are added when it is stored).
    job: dict[str, Any]
    policy: RetryPolicy
    scheduled_ms: int | None
    expires_ms: int | None
    timeout_ms: int | None
    visibility_ms: int | None
    pending: bool
    unique: dict[str, Any] | None
    rate_limit: dict[str, Any] | None
    #: Longest silence between heartbeats before the job counts as stalled (ojs-timeouts §5.5).
    heartbeat_ms: int | None = None

    @property
    def id(self) -> str:
        return str(self.job["id"])

    @property
    def queue(self) -> str:
        return str(self.job["queue"])

    def initial_state(self, now_ms: int) -> State:
        if self.pending:
            return State.PENDING
        if self.scheduled_ms is not None and self.scheduled_ms > now_ms:
            return State.SCHEDULED
        return State.AVAILABLE


def parse_submission(
    body: object,
    now_ms: int,
    id_factory: Any = ids.uuid7,
    queue_retry: Callable[[str], RetryPolicy | None] | None = None,
) -> Submission:
    """Validate an enqueue request body.

    Args:
        queue_retry: the queue's default retry policy, if it has one; a job's own (partial)
            policy is merged over it (ojs-queue-config.md §7.3), else over the server default.

    Raises:
        InvalidRequestError: a required field is missing or a field has the wrong type/format.
        ValidationError: a retry policy value is out of range (422, as the suites require).
    """
    if not isinstance(body, Mapping):
        raise InvalidRequestError("The job must be a JSON object.", field="body")
    options = body.get("options")
    if options is None:
        options = {}
    if not isinstance(options, Mapping):
        raise _bad("options", "must be an object", options)

    job_type = _job_type(body.get("type"))
    args = _args(body)
    queue = _queue(_pick(options, body, "queue"))
    job_id = _job_id(body.get("id"), id_factory)
    meta = _meta(body.get("meta"), options.get("metadata"))
    priority = _priority(_pick(options, body, "priority"))
    specversion = body.get("specversion", "1.0")
    if specversion != "1.0":
        raise _bad("specversion", 'must be "1.0"', specversion)

    timing = _timing(options, body, now_ms)
    base = queue_retry(queue) if queue_retry is not None else None
    policy = parse_policy(_pick(options, body, "retry"), base or DEFAULT_POLICY)
    unique = _unique(_pick(options, body, "unique"))
    tags = _tags(_pick(options, body, "tags"))
    pending = _flag(options.get("pending", body.get("pending")), "pending")
    rate_limit = _pick(options, body, "rate_limit")
    rates.parse_job_limit(rate_limit, queue)  # validation only: the job keeps it as sent
    schema = body.get("schema")
    if schema is not None and not isinstance(schema, str):
        raise _bad("schema", "must be a string (a schema URI)", schema)

    # Fields nobody asked for are echoed first, as sent (most jobs have none).
    job: dict[str, Any] = {key: value for key, value in body.items() if key not in _NOT_ECHOED}
    job["specversion"] = "1.0"
    job["id"] = job_id
    job["type"] = job_type
    job["queue"] = queue
    job["args"] = args
    job["meta"] = meta
    job["priority"] = priority
    job["attempt"] = 0
    job["max_attempts"] = policy.max_attempts
    job["retry"] = policy.to_wire()
    if tags is not None:
        job["tags"] = tags
    if schema is not None:
        job["schema"] = schema
    if timing is not _NO_TIMING:
        optional = {
            "timeout_ms": timing.timeout_ms,
            "visibility_timeout_ms": timing.visibility_ms,
            "heartbeat_timeout_ms": timing.heartbeat_ms,
            "scheduled_at": timing.scheduled_at,
            "expires_at": timing.expires_at,
        }
        job.update({key: value for key, value in optional.items() if value is not None})
    if unique is not None:
        job["unique"] = unique
    if rate_limit is not None:
        job["rate_limit"] = dict(rate_limit)
    return Submission(
        job=job,
        policy=policy,
        scheduled_ms=timing.scheduled_ms,
        expires_ms=timing.expires_ms,
        timeout_ms=timing.timeout_ms,
        visibility_ms=timing.visibility_ms,
        pending=pending,
        unique=unique,
        rate_limit=dict(rate_limit) if rate_limit is not None else None,
        heartbeat_ms=timing.heartbeat_ms,
    )


def _pick(options: Mapping[str, Any], body: Mapping[str, Any], *names: str) -> Any:
    """The first of `names` given in `options`, else at the top level (None: none given)."""
    for source in (options, body):
        for name in names:
            value = source.get(name)
            if value is not None:
                return value
    return None


@dataclasses.dataclass(frozen=True, slots=True)
class _Timing:
    timeout_ms: int | None
    visibility_ms: int | None
    heartbeat_ms: int | None
    scheduled_ms: int | None
    scheduled_at: str | None
    expires_ms: int | None
    expires_at: str | None


def _timing(options: Mapping[str, Any], body: Mapping[str, Any], now_ms: int) -> _Timing:
    """Timeouts and the schedule/expiry times, options first, then the top level."""
    if _TIMING_FIELDS.isdisjoint(body) and _TIMING_FIELDS.isdisjoint(options):
        return _NO_TIMING

    visibility_ms = _positive_ms(
        _pick(options, body, "visibility_timeout_ms"), "visibility_timeout_ms"
    )
    if visibility_ms is None and body.get("visibility_timeout") is not None:
        visibility_ms = _seconds_to_ms(body["visibility_timeout"], "visibility_timeout")
    heartbeat_ms = _positive_ms(
        _pick(options, body, "heartbeat_timeout_ms"), "heartbeat_timeout_ms"
    )
    heartbeat_s = _pick(options, body, "heartbeat_timeout")
    if heartbeat_ms is None and heartbeat_s is not None:
        heartbeat_ms = _seconds_to_ms(heartbeat_s, "heartbeat_timeout")
    scheduled_raw = _pick(options, body, "scheduled_at", "delay_until")
    scheduled_ms = _when(scheduled_raw, "scheduled_at", now_ms)
    expires_raw = _pick(options, body, "expires_at")
    expires_ms = _when(expires_raw, "expires_at", now_ms)
    return _Timing(
        timeout_ms=_timeout_ms(options, body),
        visibility_ms=visibility_ms,
        heartbeat_ms=heartbeat_ms,
        scheduled_ms=scheduled_ms,
        scheduled_at=_echo_time(scheduled_raw, scheduled_ms) if scheduled_ms is not None else None,
        expires_ms=expires_ms,
        expires_at=_echo_time(expires_raw, expires_ms) if expires_ms is not None else None,
    )


#: Every field `_timing` reads; a job with none of them (most jobs) skips it.
_TIMING_FIELDS = frozenset(
    {
        "timeout",
        "timeout_ms",
        "visibility_timeout",
        "visibility_timeout_ms",
        "heartbeat_timeout",
        "heartbeat_timeout_ms",
        "scheduled_at",
        "delay_until",
        "expires_at",
    }
)
_NO_TIMING = _Timing(None, None, None, None, None, None, None)


def validate_queue_name(value: object) -> str:
    return _queue(value)


def _bad(field: str, problem: str, received: object = None) -> InvalidRequestError:
    return InvalidRequestError(
        f"The '{field}' field {problem}.", field=field, received=_type_name(received)
    )


def _type_name(value: object) -> str:
    names = {
        type(None): "null",
        bool: "boolean",
        int: "integer",
        float: "number",
        str: "string",
        list: "array",
        dict: "object",
    }
    return names.get(type(value), type(value).__name__)


def _job_type(value: object) -> str:
    if value is None:
        raise InvalidRequestError(
            "The 'type' field is required.", field="type", validation="required"
        )
    if not isinstance(value, str):
        raise _bad("type", "must be a string", value)
    if not value or len(value) > MAX_TYPE_LEN or not TYPE_RE.match(value):
        raise _bad("type", "must be dot-namespaced lowercase segments such as 'email.send'", value)
    return value


def _args(body: Mapping[str, Any]) -> list[Any]:
    if "args" not in body:
        raise InvalidRequestError(
            "The 'args' field is required.", field="args", validation="required"
        )
    value = body["args"]
    if not isinstance(value, list):
        raise InvalidRequestError(
            "The 'args' field must be a JSON array.",
            field="args",
            expected="array",
            received=_type_name(value),
        )
    return value


def _queue(value: object) -> str:
    if value is None:
        return DEFAULT_QUEUE
    if not isinstance(value, str):
        raise _bad("queue", "must be a string", value)
    if not value or len(value) > MAX_QUEUE_LEN or not QUEUE_RE.match(value):
        raise _bad("queue", "must match ^[a-z0-9][a-z0-9.-]*$ (at most 128 characters)", value)
    return value


def _job_id(value: object, id_factory: Any) -> str:
    if value is None:
        return str(id_factory())
    if not ids.is_uuid7(value):
        raise _bad("id", "must be a lowercase UUIDv7", value)
    return str(value)


def _meta(meta: object, metadata: object) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for name, value in (("meta", meta), ("options.metadata", metadata)):
        if value is None:
            continue
        if not isinstance(value, dict):
            raise _bad(name, "must be an object", value)
        merged.update(value)
    return merged


def _priority(value: object) -> int:
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int):
        raise _bad("priority", "must be an integer", value)
    if not MIN_PRIORITY <= value <= MAX_PRIORITY:
        raise InvalidRequestError(
            f"The 'priority' field must be between {MIN_PRIORITY} and {MAX_PRIORITY}.",
            field="priority",
            received=value,
        )
    return value


def _positive_ms(value: object, field: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise _bad(field, "must be a positive integer of milliseconds", value)
    return value


def _seconds_to_ms(value: object, field: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise _bad(field, "must be a positive number of seconds", value)
    return round(value * 1000)


def _timeout_ms(options: Mapping[str, Any], body: Mapping[str, Any]) -> int | None:
    timeout_ms = _pick(options, body, "timeout_ms")
    if timeout_ms is not None:
        return _positive_ms(timeout_ms, "timeout_ms")
    timeout = _pick(options, body, "timeout")
    return _seconds_to_ms(timeout, "timeout") if timeout is not None else None


def _when(value: object, field: str, now_ms: int) -> int | None:
    """An absolute RFC 3339 time, or `+<ISO 8601 duration>` relative to now."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise _bad(field, "must be an RFC 3339 timestamp or +<ISO 8601 duration>", value)
    try:
        if value.startswith("+"):
            return now_ms + parse_duration_ms(value[1:])
        return ids.parse_ts(value)
    except ValueError as exc:
        raise InvalidRequestError(
            f"The '{field}' field must be an RFC 3339 timestamp with a time zone or "
            f"+<ISO 8601 duration>: {exc}.",
            field=field,
        ) from exc


def _echo_time(raw: object, ms: int) -> str:
    # Absolute client timestamps are echoed as sent (json-format §5.3); relative ones are resolved.
    if isinstance(raw, str) and not raw.startswith("+"):
        return raw
    return ids.format_ts(ms)


def _tags(value: object) -> list[str] | None:
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(t, str) for t in value):
        raise _bad("tags", "must be an array of strings", value)
    return list(value)


def _flag(value: object, field: str) -> bool:
    if value is None:
        return False
    if not isinstance(value, bool):
        raise _bad(field, "must be a boolean", value)
    return value


def _unique(value: object) -> dict[str, Any] | None:
    """Validate a unique policy (ojs-unique-jobs.md §2); the job keeps it as sent."""
    if unique.parse_policy(value) is None:
        return None
    assert isinstance(value, Mapping)
    return dict(value)
