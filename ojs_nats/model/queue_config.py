"""A queue's configuration document (ojs-queue-config.md §6, ojs-admin-api.md §6.6,
ojs-backpressure.md §6): validation of updates (only the fields named; `null` resets), merging,
the normalized stored form and the wire form.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ojs_nats.errors import UnsupportedError
from ojs_nats.model import rates
from ojs_nats.model.durations import parse_duration_ms
from ojs_nats.model.retry import DEFAULT_POLICY, RetryPolicy, parse_policy

STRATEGIES = ("reject", "block", "drop_oldest")
RETENTION_STATES = ("completed", "cancelled", "discarded")
#: Every setting of the stored form, with its default.
DEFAULTS: dict[str, Any] = {
    "paused": False,
    "concurrency": None,
    "rate_limit": None,
    "throttle": None,
    "backpressure": None,
    "default_retry": None,
    "retention": None,
    "dead_letter_ttl": None,
    "visibility_timeout": None,
    "default_timeout": None,
}
#: Settings the documents define that this server does not implement (refused, not ignored).
UNSUPPORTED = frozenset(
    {
        "max_size_bytes",
        "dead_letter_queue",
        "dead_letter_max_size",
        "allowed_job_types",
        "producers",
    }
)
_ALIASES = frozenset({"max_size", "max_depth", "overflow_policy"})


def parse_update(body: Mapping[str, Any]) -> dict[str, Any]:
    """The settings an update request sets, normalized. `{"config": {...}}` is unwrapped.

    Raises:
        InvalidRequestError: an unknown field or a value of the wrong type or range (400).
        UnsupportedError: a documented setting this server does not implement (422).
        ValidationError: an invalid `default_retry` (422, as for a job's retry policy).
    """
    if set(body) == {"config"} and isinstance(body["config"], Mapping):
        body = body["config"]
    unsupported = sorted(set(body) & UNSUPPORTED)
    if unsupported:
        raise UnsupportedError(
            f"Queue settings not supported by this server: {', '.join(unsupported)}.",
            fields=unsupported,
        )
    unknown = sorted(set(body) - set(DEFAULTS) - _ALIASES)
    if unknown:
        raise _bad("config", f"Unknown queue settings: {', '.join(unknown)}.")
    update: dict[str, Any] = {}
    for name, parse in _PARSERS.items():
        if name in body:
            update[name] = None if body[name] is None else parse(body[name])
    if "paused" in update and update["paused"] is None:
        update["paused"] = False
    _apply_aliases(body, update)
    return update


def merged(stored: Mapping[str, Any] | None, update: Mapping[str, Any]) -> dict[str, Any]:
    """The full normalized configuration after applying `update` over `stored`."""
    config = {**DEFAULTS, **(stored or {})}
    config.update(update)
    return config


def rate(config: Mapping[str, Any]) -> rates.Rate | None:
    raw = config.get("rate_limit")
    return rates.Rate(int(raw["limit"]), int(raw["period_ms"])) if raw else None


def throttle(config: Mapping[str, Any]) -> rates.Rate | None:
    raw = config.get("throttle")
    return rates.Rate(int(raw["limit"]), int(raw["period_ms"]), burst=False) if raw else None


def default_retry(config: Mapping[str, Any]) -> RetryPolicy | None:
    raw = config.get("default_retry")
    return RetryPolicy.from_record(raw) if raw else None


def to_wire(config: Mapping[str, Any]) -> dict[str, Any]:
    """The configuration as the API shows it (durations as ISO 8601, retry in wire form)."""
    wire = {**DEFAULTS, **config}
    for name in ("rate_limit", "throttle"):
        if wire[name]:
            wire[name] = rates.Rate(wire[name]["limit"], wire[name]["period_ms"]).to_wire()
    if wire["default_retry"]:
        wire["default_retry"] = RetryPolicy.from_record(wire["default_retry"]).to_wire()
    return wire


def _apply_aliases(body: Mapping[str, Any], update: dict[str, Any]) -> None:
    """`max_size`/`max_depth` + `overflow_policy` (queue-config §6.1) are the backpressure bound."""
    if not _ALIASES & set(body):
        return
    if "backpressure" in body:
        raise _bad("backpressure", "Give the bound either as backpressure or as max_size.")
    raw = {
        "max_depth": body.get("max_depth", body.get("max_size")),
        "strategy": body.get("overflow_policy", "reject"),
    }
    update["backpressure"] = None if raw["max_depth"] is None else _backpressure(raw)


def _paused(value: object) -> bool:
    if not isinstance(value, bool):
        raise _bad("paused", "paused must be a boolean.")
    return value


def _concurrency(value: object) -> int:
    return _count(value, "concurrency", minimum=0)


def _rate_limit(value: object) -> dict[str, Any]:
    parsed = rates.parse_rate(value, "rate_limit")
    assert parsed is not None
    return {"limit": parsed.limit, "period_ms": parsed.period_ms}


def _throttle(value: object) -> dict[str, Any]:
    parsed = rates.parse_rate(value, "throttle", burst=False)
    assert parsed is not None
    return {"limit": parsed.limit, "period_ms": parsed.period_ms}


def _backpressure(value: object) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        raise _bad("backpressure", "backpressure must be an object.")
    unknown = sorted(set(value) - {"max_depth", "strategy", "warning_threshold"})
    if unknown:
        raise _bad("backpressure", f"Unknown backpressure settings: {', '.join(unknown)}.")
    strategy = value.get("strategy", "reject")
    if strategy not in STRATEGIES:
        raise _bad("backpressure.strategy", "strategy must be reject, block or drop_oldest.")
    threshold = value.get("warning_threshold", 0.8)
    if (
        isinstance(threshold, bool)
        or not isinstance(threshold, int | float)
        or not 0 <= threshold <= 1
    ):
        raise _bad("backpressure.warning_threshold", "warning_threshold must be from 0 to 1.")
    return {
        "max_depth": _count(value.get("max_depth"), "backpressure.max_depth", minimum=0),
        "strategy": strategy,
        "warning_threshold": float(threshold),
    }


def _retry(value: object) -> dict[str, Any]:
    return parse_policy(value, DEFAULT_POLICY).to_record()


def _retention(value: object) -> dict[str, str]:
    if not isinstance(value, Mapping):
        raise _bad("retention", "retention must be an object of ISO 8601 durations.")
    unknown = sorted(set(value) - set(RETENTION_STATES))
    if unknown:
        raise _bad("retention", f"retention may set {', '.join(RETENTION_STATES)} only.")
    for state, text in value.items():
        _duration(text, f"retention.{state}")
    return dict(value)


def _dead_letter_ttl(value: object) -> str:
    _duration(value, "dead_letter_ttl")
    assert isinstance(value, str)
    return value


def _seconds(field: str) -> Any:
    def parse(value: object) -> int:
        return _count(value, field, minimum=1)

    return parse


def _duration(value: object, field: str) -> int:
    if not isinstance(value, str):
        raise _bad(field, f"{field} must be an ISO 8601 duration such as P7D.")
    try:
        ms = parse_duration_ms(value)
    except ValueError as exc:
        raise _bad(field, f"{field}: {exc}.") from exc
    if ms < 1000:
        raise _bad(field, f"{field} must be at least one second.")
    return ms


def duration_s(value: str) -> int:
    """Whole seconds of a stored (already validated) duration."""
    return parse_duration_ms(value) // 1000


_count = rates.checked_count
_bad = rates.bad


_PARSERS: dict[str, Any] = {
    "paused": _paused,
    "concurrency": _concurrency,
    "rate_limit": _rate_limit,
    "throttle": _throttle,
    "backpressure": _backpressure,
    "default_retry": _retry,
    "retention": _retention,
    "dead_letter_ttl": _dead_letter_ttl,
    "visibility_timeout": _seconds("visibility_timeout"),
    "default_timeout": _seconds("default_timeout"),
}
