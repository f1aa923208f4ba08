"""Unique-job policies (ojs-unique-jobs.md): validation, the uniqueness key, and the scope test.

Pure code. `service/unique.py` claims the key in KV; this module says what the key is (a SHA-256
of the canonical JSON of the chosen dimensions, §4) and whether an existing job still holds it
(its state is one of the policy's `states` and its `period` has not run out, §7.4).
"""

from __future__ import annotations

import dataclasses
import hashlib
import unicodedata
from collections.abc import Mapping
from typing import Any

import orjson

from ojs_nats.errors import InvalidRequestError
from ojs_nats.model.durations import parse_duration_ms
from ojs_nats.model.lifecycle import State

DIMENSIONS = frozenset({"type", "queue", "args", "meta"})
DEFAULT_STATES = frozenset(
    {State.AVAILABLE, State.ACTIVE, State.SCHEDULED, State.RETRYABLE, State.PENDING}
)
#: `use_existing` is the OpenAPI document's name for `ignore`.
CONFLICTS = {
    "reject": "reject",
    "replace": "replace",
    "replace_except_schedule": "replace_except_schedule",
    "ignore": "ignore",
    "use_existing": "ignore",
}
_FIELDS = frozenset({"keys", "args_keys", "meta_keys", "period", "states", "on_conflict"})


@dataclasses.dataclass(frozen=True, slots=True)
class UniquePolicy:
    keys: frozenset[str] = frozenset({"type"})
    args_keys: tuple[str, ...] | None = None
    meta_keys: tuple[str, ...] | None = None
    period_ms: int | None = None
    states: frozenset[str] = DEFAULT_STATES
    on_conflict: str = "reject"

    def to_record(self) -> dict[str, Any]:
        return {
            "keys": sorted(self.keys),
            "args_keys": list(self.args_keys) if self.args_keys is not None else None,
            "meta_keys": list(self.meta_keys) if self.meta_keys is not None else None,
            "period_ms": self.period_ms,
            "states": sorted(self.states),
            "on_conflict": self.on_conflict,
        }

    @classmethod
    def from_record(cls, data: Mapping[str, Any]) -> UniquePolicy:
        return cls(
            keys=frozenset(data["keys"]),
            args_keys=tuple(data["args_keys"]) if data.get("args_keys") is not None else None,
            meta_keys=tuple(data["meta_keys"]) if data.get("meta_keys") is not None else None,
            period_ms=data.get("period_ms"),
            states=frozenset(data["states"]),
            on_conflict=str(data["on_conflict"]),
        )


def parse_policy(raw: object) -> UniquePolicy | None:
    """Validate a `unique` object (§2.2: an invalid policy is an `invalid_request`).

    Raises:
        InvalidRequestError: the message and `details.field` name the offending field.
    """
    if raw is None:
        return None
    if not isinstance(raw, Mapping):
        raise _bad("unique", "The 'unique' field must be an object.")
    unknown = sorted(set(raw) - _FIELDS)
    if unknown:
        raise _bad("unique", f"unique has unknown fields: {', '.join(unknown)}.")
    keys = _names(raw.get("keys"), "unique.keys", default=("type",))
    if not set(keys) <= DIMENSIONS:
        raise _bad("unique.keys", "unique.keys may only contain type, queue, args and meta.")
    meta_keys = _names(raw.get("meta_keys"), "unique.meta_keys", default=None)
    if "meta" in keys and not meta_keys:
        raise _bad("unique.meta_keys", "unique.meta_keys is required when keys contains meta.")
    states = _names(raw.get("states"), "unique.states", default=tuple(DEFAULT_STATES))
    if not set(states) <= set(State):
        raise _bad("unique.states", "unique.states must contain job state names only.")
    conflict = raw.get("on_conflict", "reject")
    if conflict not in CONFLICTS:
        raise _bad(
            "unique.on_conflict",
            "unique.on_conflict must be reject, replace, replace_except_schedule or ignore.",
        )
    return UniquePolicy(
        keys=frozenset(keys) | {"type"},
        args_keys=_names(raw.get("args_keys"), "unique.args_keys", default=None),
        meta_keys=meta_keys,
        period_ms=_period(raw.get("period")),
        states=frozenset(states),
        on_conflict=CONFLICTS[str(conflict)],
    )


def fingerprint(
    policy: UniquePolicy, job_type: str, queue: str, args: list[Any], meta: Mapping[str, Any]
) -> str:
    """The uniqueness key: SHA-256 (hex) of the canonical JSON of the selected dimensions (§4).

    Raises:
        InvalidRequestError: `args_keys` names a key the job's args do not have (§2.2).
    """
    chosen: dict[str, Any] = {"type": job_type}
    if "queue" in policy.keys:
        chosen["queue"] = queue
    if "args" in policy.keys:
        chosen["args"] = args if policy.args_keys is None else _args_subset(args, policy.args_keys)
    if "meta" in policy.keys and policy.meta_keys:
        chosen["meta"] = {k: meta.get(k) for k in policy.meta_keys}
    text = orjson.dumps(_canonical(chosen), option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(text).hexdigest()


def holds(policy: UniquePolicy, state: str, created_ms: int, now: int) -> bool:
    """Whether an existing job in `state`, created at `created_ms`, blocks a new one (§7.4)."""
    if state not in policy.states:
        return False
    return policy.period_ms is None or now < created_ms + policy.period_ms


def _args_subset(args: list[Any], names: tuple[str, ...]) -> dict[str, Any]:
    # OJS args are an array; `args_keys` name keys of its object elements (the first that has it).
    chosen: dict[str, Any] = {}
    for name in names:
        for element in args:
            if isinstance(element, Mapping) and name in element:
                chosen[name] = element[name]
                break
        else:
            raise _bad(
                "unique.args_keys", f"unique.args_keys names '{name}', which the job's args lack."
            )
    return chosen


def _canonical(value: Any) -> Any:
    """Values as RFC 8785 compares them: NFC strings, integral numbers without a fraction."""
    if isinstance(value, str):
        return unicodedata.normalize("NFC", value)
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e21:
        return int(value)
    if isinstance(value, Mapping):
        return {unicodedata.normalize("NFC", str(k)): _canonical(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_canonical(v) for v in value]
    return value


def _names(value: object, field: str, default: tuple[str, ...] | None) -> Any:
    if value is None:
        return default
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise _bad(field, f"{field} must be an array of strings.")
    return tuple(value)


def _period(value: object) -> int | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise _bad("unique.period", "unique.period must be an ISO 8601 duration such as PT1H.")
    try:
        period = parse_duration_ms(value)
    except ValueError as exc:
        raise _bad("unique.period", f"unique.period: {exc}.") from exc
    if period <= 0:
        raise _bad("unique.period", "unique.period must be longer than zero.")
    return period


def _bad(field: str, message: str) -> InvalidRequestError:
    return InvalidRequestError(message, field=field)
