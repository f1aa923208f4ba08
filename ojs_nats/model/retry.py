"""Retry policies (ojs-retry.md): validation with defaults merged in, backoff, and error matching.

A policy is kept normalized as a `RetryPolicy`; `delay_ms` is the pure backoff formula, given the
retry number and a random source, so tests can pin the randomness.
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Callable, Mapping
from typing import Any

from ojs_nats.errors import ValidationError
from ojs_nats.model.durations import format_duration_ms, parse_duration_ms

STRATEGIES = ("exponential", "linear", "constant", "polynomial")
_STRATEGY_ALIASES = {"none": "constant", "fixed": "constant", "exp": "exponential"}
ON_EXHAUSTION = ("discard", "dead_letter")


@dataclasses.dataclass(frozen=True, slots=True)
class RetryPolicy:
    max_attempts: int = 3
    initial_interval_ms: int = 1_000
    backoff_coefficient: float = 2.0
    max_interval_ms: int = 300_000
    jitter: bool = True
    non_retryable_errors: tuple[str, ...] = ()
    on_exhaustion: str = "discard"
    backoff_strategy: str = "exponential"

    def to_wire(self) -> dict[str, Any]:
        return {
            "max_attempts": self.max_attempts,
            "initial_interval": format_duration_ms(self.initial_interval_ms),
            "backoff_coefficient": self.backoff_coefficient,
            "max_interval": format_duration_ms(self.max_interval_ms),
            "jitter": self.jitter,
            "non_retryable_errors": list(self.non_retryable_errors),
            "on_exhaustion": self.on_exhaustion,
            "backoff_strategy": self.backoff_strategy,
        }

    def to_record(self) -> dict[str, Any]:
        # Spelled out: dataclasses.asdict deep-copies every field and showed up as a tenth of a
        # 1,000-job batch enqueue's time.
        return {
            "max_attempts": self.max_attempts,
            "initial_interval_ms": self.initial_interval_ms,
            "backoff_coefficient": self.backoff_coefficient,
            "max_interval_ms": self.max_interval_ms,
            "jitter": self.jitter,
            "non_retryable_errors": list(self.non_retryable_errors),
            "on_exhaustion": self.on_exhaustion,
            "backoff_strategy": self.backoff_strategy,
        }

    @classmethod
    def from_record(cls, data: Mapping[str, Any]) -> RetryPolicy:
        return cls(**{**data, "non_retryable_errors": tuple(data["non_retryable_errors"])})


DEFAULT_POLICY = RetryPolicy()


def parse_policy(raw: object, base: RetryPolicy = DEFAULT_POLICY) -> RetryPolicy:
    """Merge a client's (partial) policy over `base` and validate the result.

    Accepts the spec's ISO 8601 durations and the HTTP binding's `*_ms` integers. Unknown keys are
    ignored (the suites send extension keys).

    Raises:
        ValidationError: a field is invalid; the message names it.
    """
    if raw is None:
        return base
    if not isinstance(raw, Mapping):
        raise _invalid("retry", "retry must be an object")
    policy = dataclasses.replace(base, **_fields(raw))
    if policy.initial_interval_ms <= 0:
        raise _invalid("retry.initial_interval", "retry.initial_interval must be greater than zero")
    if policy.max_interval_ms < policy.initial_interval_ms:
        raise _invalid(
            "retry.max_interval", "retry.max_interval must be at least retry.initial_interval"
        )
    return policy


def _fields(raw: Mapping[str, Any]) -> dict[str, Any]:
    """The validated fields a client set, under RetryPolicy's names."""
    values: dict[str, Any] = {}
    if "max_attempts" in raw:
        values["max_attempts"] = _non_negative_int(raw["max_attempts"], "max_attempts")
    for field in ("initial_interval", "max_interval"):
        parsed = _interval(raw, field)
        if parsed is not None:
            values[f"{field}_ms"] = parsed
    if "backoff_coefficient" in raw:
        values["backoff_coefficient"] = _coefficient(raw["backoff_coefficient"])
    if "jitter" in raw:
        if not isinstance(raw["jitter"], bool):
            raise _invalid("retry.jitter", "retry.jitter must be a boolean")
        values["jitter"] = raw["jitter"]
    if "non_retryable_errors" in raw:
        values["non_retryable_errors"] = _error_list(raw["non_retryable_errors"])
    if "on_exhaustion" in raw:
        if raw["on_exhaustion"] not in ON_EXHAUSTION:
            raise _invalid(
                "retry.on_exhaustion", "retry.on_exhaustion must be 'discard' or 'dead_letter'"
            )
        values["on_exhaustion"] = raw["on_exhaustion"]
    strategy = raw.get("backoff_strategy", raw.get("strategy"))
    if strategy is not None:
        values["backoff_strategy"] = _strategy(strategy)
    return values


def delay_ms(
    policy: RetryPolicy,
    retry_number: int,
    uniform: Callable[[float, float], float] = random.uniform,
) -> int:
    """Backoff before retry `retry_number` (1 = the first retry), capped before and after jitter."""
    n = max(1, retry_number)
    base = policy.initial_interval_ms
    strategy = policy.backoff_strategy
    if strategy == "constant" or (policy.backoff_coefficient == 1.0 and strategy == "exponential"):
        raw = float(base)
    elif strategy == "linear":
        raw = float(base * n)
    elif strategy == "polynomial":
        raw = base * float(n) ** policy.backoff_coefficient
    else:
        raw = base * policy.backoff_coefficient ** (n - 1)
    capped = min(raw, float(policy.max_interval_ms))
    if policy.jitter:
        capped = min(capped * uniform(0.5, 1.5), float(policy.max_interval_ms))
    return max(0, round(capped))


def matches_non_retryable(policy: RetryPolicy, error_type: str | None) -> bool:
    """Exact match, or prefix match for entries ending in `.*` (ojs-retry.md §6.2)."""
    if not error_type:
        return False
    for entry in policy.non_retryable_errors:
        if entry == error_type:
            return True
        if entry.endswith(".*") and error_type.startswith(entry[:-1]):
            return True
    return False


def _invalid(field: str, message: str) -> ValidationError:
    return ValidationError(message, field=field, validation="retry_policy_invalid")


def _non_negative_int(value: object, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise _invalid(f"retry.{name}", f"retry.{name} must be a non-negative integer")
    return value


def _interval(raw: Mapping[str, Any], field: str) -> int | None:
    if field in raw and raw[field] is not None:
        value = raw[field]
        if not isinstance(value, str):
            raise _invalid(f"retry.{field}", f"retry.{field} must be an ISO 8601 duration")
        try:
            return parse_duration_ms(value)
        except ValueError as exc:
            raise _invalid(f"retry.{field}", f"retry.{field}: {exc}") from exc
    ms_field = f"{field}_ms"
    alias = {"initial_interval": "initial_delay_ms", "max_interval": "max_delay_ms"}[field]
    for key in (ms_field, alias):
        if key in raw and raw[key] is not None:
            return _non_negative_int(raw[key], key)
    return None


def _coefficient(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 1.0:
        raise _invalid(
            "retry.backoff_coefficient", "retry.backoff_coefficient must be a number >= 1.0"
        )
    return float(value)


def _error_list(value: object) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise _invalid(
            "retry.non_retryable_errors", "retry.non_retryable_errors must be an array of strings"
        )
    return tuple(value)


def _strategy(value: object) -> str:
    if isinstance(value, str):
        name = _STRATEGY_ALIASES.get(value, value)
        if name in STRATEGIES:
            return name
    raise _invalid(
        "retry.backoff_strategy", "retry.backoff_strategy must be one of " + ", ".join(STRATEGIES)
    )
