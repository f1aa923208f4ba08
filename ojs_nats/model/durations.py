"""ISO 8601 durations (`PT1S`, `PT5M`, `P1D`, `PT0.5S`) as milliseconds."""

from __future__ import annotations

import functools
import re

_DURATION_RE = re.compile(
    r"^P(?:(?P<weeks>\d+(?:\.\d+)?)W)?(?:(?P<days>\d+(?:\.\d+)?)D)?"
    r"(?:T(?:(?P<hours>\d+(?:\.\d+)?)H)?(?:(?P<minutes>\d+(?:\.\d+)?)M)?"
    r"(?:(?P<seconds>\d+(?:\.\d+)?)S)?)?$"
)
_UNIT_MS = {
    "weeks": 604_800_000,
    "days": 86_400_000,
    "hours": 3_600_000,
    "minutes": 60_000,
    "seconds": 1_000,
}


def parse_duration_ms(text: str) -> int:
    """Milliseconds in an ISO 8601 duration (no years or months: their length varies).

    Raises:
        ValueError: the text is not such a duration.
    """
    m = _DURATION_RE.match(text)
    if m is None or text in ("P", "PT") or text.endswith("T"):
        raise ValueError(f"{text!r} is not an ISO 8601 duration such as PT30S")
    total = 0.0
    for unit, value in m.groupdict().items():
        if value is not None:
            total += float(value) * _UNIT_MS[unit]
    return round(total)


# Cached: every job's retry policy is written out with two durations, nearly always the same.
@functools.lru_cache(maxsize=256)
def format_duration_ms(ms: int) -> str:
    """The shortest ISO 8601 form of a whole number of milliseconds, e.g. PT1.5S."""
    if ms % 1000:
        return f"PT{ms / 1000:g}S"
    seconds = ms // 1000
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    text = "PT" + (f"{hours}H" if hours else "") + (f"{minutes}M" if minutes else "")
    return text + (f"{secs}S" if secs or text == "PT" else "")
