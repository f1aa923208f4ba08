"""Cron schedules (ojs-cron.md): parsing, validation and the next fire time, DST included.

Calendar expressions (5 fields, or 6 with seconds first, and the `@daily` family) are expanded by
croniter over *wall-clock* times of the job's IANA zone; each wall time is then placed on the
UTC timeline here: a wall time that does not exist (spring forward) is skipped, and one that
exists twice (fall back) fires once, at its first occurrence. `@every <duration>` counts from an
anchor instead. Pure functions of their inputs; `now`/`after` are epoch milliseconds.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import re
import zoneinfo
from functools import lru_cache

from croniter import CroniterBadCronError, CroniterBadDateError, croniter

from ojs_nats.errors import InvalidRequestError

NAME_RE = re.compile(r"^[a-z0-9][a-z0-9\-.]*$")
MAX_NAME_LEN = 255
OVERLAP_POLICIES = ("skip", "allow", "cancel_previous", "enqueue")
SPECIALS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
_EVERY_RE = re.compile(r"^@every\s+((?:\d+(?:\.\d+)?(?:ms|s|m|h))+)$")
_EVERY_PART_RE = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)")
_UNIT_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000}
#: Cron schedules are not evaluated more often than once a second (ojs-cron.md §7.3).
MIN_INTERVAL_MS = 1000
#: An expression with no occurrence this far ahead never fires (e.g. 30 February).
HORIZON_YEARS = 10
_UTC = dt.UTC


@dataclasses.dataclass(frozen=True, slots=True)
class Schedule:
    expression: str
    timezone: str
    #: croniter expression over wall-clock time, or None for `@every`.
    calendar: str | None
    seconds_first: bool
    every_ms: int | None

    def next_after(self, after_ms: int, anchor_ms: int) -> int:
        """The first fire time strictly after `after_ms` (epoch ms).

        Raises:
            ValueError: the schedule has no further occurrence.
        """
        if self.every_ms is not None:
            if after_ms < anchor_ms:
                return anchor_ms + self.every_ms
            periods = (after_ms - anchor_ms) // self.every_ms + 1
            return anchor_ms + periods * self.every_ms
        return _next_calendar(self, after_ms)


def parse_schedule(expression: object, timezone: object = None) -> Schedule:
    """Validate an expression and a zone (ojs-cron.md §3 to §5).

    Raises:
        InvalidRequestError: invalid expression (400, as §3.5 requires) or zone.
    """
    zone = parse_timezone(timezone)
    if not isinstance(expression, str) or not expression.strip():
        raise InvalidRequestError(
            "The cron expression must be a non-empty string.", field="expression"
        )
    text = " ".join(expression.split())
    every = _EVERY_RE.match(text)
    if every:
        every_ms = sum(
            round(float(v) * _UNIT_MS[u]) for v, u in _EVERY_PART_RE.findall(every.group(1))
        )
        if every_ms < MIN_INTERVAL_MS:
            raise InvalidRequestError(
                "@every intervals must be at least 1s.", field="expression", expression=text
            )
        return Schedule(text, zone, None, False, every_ms)
    calendar = SPECIALS.get(text.lower(), text)
    fields = calendar.split(" ")
    if len(fields) not in (5, 6) or not croniter.is_valid(
        calendar, second_at_beginning=len(fields) == 6
    ):
        raise InvalidRequestError(
            f"Invalid cron expression {text!r}: expected 5 fields (minute hour day month "
            "weekday), 6 with seconds first, or @yearly/@monthly/@weekly/@daily/@hourly/"
            "@every <duration>.",
            field="expression",
            expression=text,
        )
    schedule = Schedule(text, zone, calendar, len(fields) == 6, None)
    try:
        schedule.next_after(0, 0)
        schedule.next_after(_epoch_ms(dt.datetime.now(_UTC)), 0)
    except ValueError as exc:
        raise InvalidRequestError(
            f"Cron expression {text!r} never fires.", field="expression", expression=text
        ) from exc
    return schedule


def parse_timezone(value: object) -> str:
    """An IANA zone name; offsets and abbreviations are refused (§5.1)."""
    if value is None:
        return "UTC"
    if not isinstance(value, str) or not (value == "UTC" or "/" in value):
        raise InvalidRequestError(
            f"Time zone {value!r} is not an IANA name such as 'America/New_York' or 'UTC'.",
            field="timezone",
        )
    try:
        _zone(value)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
        raise InvalidRequestError(f"Unknown IANA time zone {value!r}.", field="timezone") from exc
    return value


def validate_name(value: object) -> str:
    if not isinstance(value, str) or not NAME_RE.match(value) or len(value) > MAX_NAME_LEN:
        raise InvalidRequestError(
            "The cron 'name' must match [a-z0-9][a-z0-9.-]* (at most 255 characters).", field="name"
        )
    return value


def tick_job_id(namespace: str, name: str, tick_ms: int) -> str:
    """The id of the job a cron tick enqueues: the same tick always gives the same id, so a
    retried tick can never enqueue twice (the job store refuses a second create)."""
    digest = int.from_bytes(
        hashlib.sha256(f"{namespace}\0{name}\0{tick_ms}".encode()).digest()[:10]
    )
    rand_a = digest >> 68 & 0xFFF
    rand_b = digest & ((1 << 62) - 1)
    value = (tick_ms << 80) | (0x7 << 76) | (rand_a << 64) | (0b10 << 62) | rand_b
    h = f"{value:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


@lru_cache(maxsize=256)
def _zone(name: str) -> zoneinfo.ZoneInfo:
    return zoneinfo.ZoneInfo(name)


def _epoch_ms(moment: dt.datetime) -> int:
    return int(moment.timestamp() * 1000)


def _place(wall: dt.datetime, zone: zoneinfo.ZoneInfo) -> dt.datetime | None:
    """A naive wall time as an instant in `zone`: None if it does not exist (a DST gap); the
    first of two instants if it exists twice (fold=0)."""
    first = wall.replace(tzinfo=zone, fold=0)
    round_trip = first.astimezone(_UTC).astimezone(zone).replace(tzinfo=None)
    if round_trip != wall:
        return None  # skipped by a spring-forward transition
    return first


def _next_calendar(schedule: Schedule, after_ms: int) -> int:
    assert schedule.calendar is not None
    zone = _zone(schedule.timezone)
    after = dt.datetime.fromtimestamp(after_ms / 1000, _UTC)
    # Candidates come after the wall time of `after`. In the second pass of a repeated
    # (fall-back) hour, wall times already fired in the first pass map to earlier instants and
    # are filtered out below on the UTC timeline.
    start = after.astimezone(zone).replace(tzinfo=None)
    try:
        walls = croniter(
            schedule.calendar,
            start,
            second_at_beginning=schedule.seconds_first,
            max_years_between_matches=HORIZON_YEARS,
        )
        for _ in range(10_000):
            wall = walls.get_next(dt.datetime)
            instant = _place(wall, zone)
            if instant is None:
                continue
            at_ms = _epoch_ms(instant)
            if at_ms > after_ms:
                return at_ms
    except (CroniterBadDateError, CroniterBadCronError) as exc:
        raise ValueError(str(exc)) from exc
    raise ValueError("no occurrence found")
