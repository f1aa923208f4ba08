"""Rate and concurrency limit policies (ojs-rate-limiting.md) and the window arithmetic, pure.

Window limits are GCRA: one arrival time (TAT) per partition. `rate` lets a burst of `limit`
through after idleness and holds the long-run rate at limit/period; `throttle` allows no burst.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import re
from collections.abc import Mapping
from typing import Any

from ojs_nats.errors import InvalidRequestError
from ojs_nats.model.durations import format_duration_ms, parse_duration_ms

KEY_RE = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9._:-]*$")
MAX_KEY_LEN = 256
ON_LIMIT = ("wait", "reschedule", "drop")
_JOB_FIELDS = frozenset(
    {"key", "concurrency", "rate", "throttle", "on_limit", "max_per_second", "limit", "period"}
)


@dataclasses.dataclass(frozen=True, slots=True)
class Rate:
    """At most `limit` starts per `period_ms`; `burst=False` spaces them evenly (throttle)."""

    limit: int
    period_ms: int
    burst: bool = True

    @property
    def interval(self) -> float:
        return self.period_ms / self.limit

    @property
    def tolerance(self) -> float:
        return self.period_ms - self.interval if self.burst else 0.0

    def to_wire(self) -> dict[str, Any]:
        return {"limit": self.limit, "period": format_duration_ms(self.period_ms)}


@dataclasses.dataclass(frozen=True, slots=True)
class Grant:
    granted: int
    #: The partition's TAT after the grant (unchanged when nothing was granted).
    tat: float
    #: Milliseconds until one more start would conform.
    wait_ms: int


def take(rate: Rate, tat: float | None, now: int, wanted: int) -> Grant:
    """GCRA for up to `wanted` starts at `now`, given the partition's TAT (None: idle)."""
    start = max(tat if tat is not None else now, float(now))
    room = math.floor((now + rate.tolerance - start) / rate.interval + 1e-9) + 1
    granted = max(0, min(wanted, room))
    new_tat = start + granted * rate.interval if granted else (tat or float(now))
    wait = max(0.0, start + granted * rate.interval - rate.tolerance - now)
    return Grant(granted, new_tat, math.ceil(wait))


def refund(rate: Rate, tat: float, count: int, now: int) -> float:
    """Give back `count` starts that were granted but not used (never below `now`)."""
    return max(float(now), tat - count * rate.interval)


@dataclasses.dataclass(frozen=True, slots=True)
class JobLimit:
    """A job's own `rate_limit` (§6): limits shared by every job with the same key (or, without
    a key, by the jobs of the same queue that carry a keyless limit)."""

    key: str | None
    queue: str
    concurrency: int | None
    rate: Rate | None
    throttle: Rate | None
    on_limit: str = "wait"

    @property
    def partition(self) -> str:
        """A subject-safe name for the key (keys may contain ':' and other characters)."""
        if self.key is None:
            return "j_" + self.queue.replace(".", "_")
        return "k" + hashlib.sha256(self.key.encode()).hexdigest()[:32]


def parse_job_limit(raw: object, queue: str) -> JobLimit | None:
    """Validate a job's `rate_limit`. Without a `key` the limit is shared per queue.

    Accepts the rate-limiting spec's form (`key`, `concurrency`, `rate`, `throttle`, `on_limit`)
    and the OpenAPI/conformance form `{"max_per_second": N}`.

    Raises:
        InvalidRequestError: a field is invalid; `details.field` names it.
    """
    if raw is None:
        return None
    if not isinstance(raw, Mapping):
        raise bad("rate_limit", "The 'rate_limit' field must be an object.")
    unknown = sorted(set(raw) - _JOB_FIELDS)
    if unknown:
        raise bad("rate_limit", f"rate_limit has unknown fields: {', '.join(unknown)}.")
    key = raw.get("key")
    if key is not None and (
        not isinstance(key, str) or len(key) > MAX_KEY_LEN or not KEY_RE.match(key)
    ):
        raise bad("rate_limit.key", "rate_limit.key must match ^[a-zA-Z0-9][a-zA-Z0-9._:-]*$.")
    rate = parse_rate(raw.get("rate"), "rate_limit.rate")
    if raw.get("max_per_second") is not None:
        per_second = checked_count(raw["max_per_second"], "rate_limit.max_per_second", minimum=1)
        rate = Rate(per_second, 1_000)
    if raw.get("limit") is not None or raw.get("period") is not None:
        rate = parse_rate({"limit": raw.get("limit"), "period": raw.get("period")}, "rate_limit")
    on_limit = raw.get("on_limit", "wait")
    if on_limit not in ON_LIMIT:
        raise bad("rate_limit.on_limit", "rate_limit.on_limit must be wait, reschedule or drop.")
    concurrency = raw.get("concurrency")
    return JobLimit(
        key=key,
        queue=queue,
        concurrency=None
        if concurrency is None
        else checked_count(concurrency, "rate_limit.concurrency", minimum=0),
        rate=rate,
        throttle=parse_rate(raw.get("throttle"), "rate_limit.throttle", burst=False),
        on_limit=str(on_limit),
    )


def parse_rate(raw: object, field: str, burst: bool = True) -> Rate | None:
    """`{"limit": N, "period": "PT1M"}` (also `max_per_second`), or None."""
    if raw is None:
        return None
    if not isinstance(raw, Mapping):
        raise bad(field, f"{field} must be an object with limit and period.")
    if raw.get("max_per_second") is not None and raw.get("limit") is None:
        return Rate(
            checked_count(raw["max_per_second"], f"{field}.max_per_second", 1), 1_000, burst
        )
    limit = checked_count(raw.get("limit"), f"{field}.limit", minimum=1)
    period = raw.get("period")
    if not isinstance(period, str):
        raise bad(f"{field}.period", f"{field}.period must be an ISO 8601 duration like PT1M.")
    try:
        period_ms = parse_duration_ms(period)
    except ValueError as exc:
        raise bad(f"{field}.period", f"{field}.period: {exc}.") from exc
    if period_ms <= 0:
        raise bad(f"{field}.period", f"{field}.period must be longer than zero.")
    return Rate(limit, period_ms, burst)


def checked_count(value: object, field: str, minimum: int) -> int:
    """An integer (not a bool) of at least `minimum`, else a 400 naming `field`."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise bad(field, f"{field} must be an integer of at least {minimum}.")
    return value


def bad(field: str, message: str) -> InvalidRequestError:
    return InvalidRequestError(message, field=field)
