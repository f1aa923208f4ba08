"""Cron schedules with fixed clocks: fields, specials, @every, zones and DST transitions."""

import datetime as dt
import zoneinfo

import pytest

from ojs_nats.errors import InvalidRequestError
from ojs_nats.model import ids
from ojs_nats.model.cron import parse_schedule, parse_timezone, tick_job_id


def ms(text):
    return ids.parse_ts(text)


def fires(expression, zone, start, count):
    schedule = parse_schedule(expression, zone)
    out, after = [], ms(start)
    for _ in range(count):
        after = schedule.next_after(after, 0)
        out.append(ids.format_ts(after))
    return out


def test_every_minute_in_utc():
    assert fires("* * * * *", None, "2026-01-01T00:00:30Z", 2) == [
        "2026-01-01T00:01:00.000Z", "2026-01-01T00:02:00.000Z"]


def test_six_fields_put_seconds_first():
    assert fires("*/20 * * * * *", "UTC", "2026-01-01T00:00:00Z", 3) == [
        "2026-01-01T00:00:20.000Z", "2026-01-01T00:00:40.000Z", "2026-01-01T00:01:00.000Z"]


@pytest.mark.parametrize(("special", "first"), [
    ("@hourly", "2026-01-01T01:00:00.000Z"), ("@daily", "2026-01-02T00:00:00.000Z"),
    ("@midnight", "2026-01-02T00:00:00.000Z"), ("@weekly", "2026-01-04T00:00:00.000Z"),
    ("@monthly", "2026-02-01T00:00:00.000Z"), ("@yearly", "2027-01-01T00:00:00.000Z"),
    ("@annually", "2027-01-01T00:00:00.000Z"),
])
def test_special_expressions(special, first):
    assert fires(special, "UTC", "2026-01-01T00:00:00Z", 1) == [first]


def test_names_and_sunday_as_seven():
    assert fires("0 9 * JAN mon", "UTC", "2026-01-01T00:00:00Z", 1) == [
        "2026-01-05T09:00:00.000Z"]
    assert fires("0 9 * * 7", "UTC", "2026-01-01T00:00:00Z", 1) == ["2026-01-04T09:00:00.000Z"]


def test_non_utc_zone_fires_at_local_time():
    # 09:00 in Tokyo (UTC+9, no DST) is 00:00 UTC.
    assert fires("0 9 * * *", "Asia/Tokyo", "2026-06-01T01:00:00Z", 2) == [
        "2026-06-02T00:00:00.000Z", "2026-06-03T00:00:00.000Z"]


@pytest.mark.parametrize(("zone", "start", "expected"), [
    # New York springs forward on 2026-03-08 (02:00 EST -> 03:00 EDT): 02:30 does not exist.
    ("America/New_York", "2026-03-06T12:00:00Z",
     ["2026-03-07T07:30:00.000Z", "2026-03-09T06:30:00.000Z"]),
    # Berlin springs forward on 2026-03-29 (02:00 CET -> 03:00 CEST).
    ("Europe/Berlin", "2026-03-27T12:00:00Z",
     ["2026-03-28T01:30:00.000Z", "2026-03-30T00:30:00.000Z"]),
])
def test_spring_forward_skips_the_missing_local_time(zone, start, expected):
    assert fires("30 2 * * *", zone, start, 2) == expected


@pytest.mark.parametrize(("zone", "expression", "start", "expected"), [
    # New York falls back on 2026-11-01: 01:30 happens twice (EDT, then EST); fire once, first.
    ("America/New_York", "30 1 * * *", "2026-10-31T12:00:00Z",
     ["2026-11-01T05:30:00.000Z", "2026-11-02T06:30:00.000Z"]),
    # Berlin falls back on 2026-10-25: 02:30 happens twice (CEST, then CET).
    ("Europe/Berlin", "30 2 * * *", "2026-10-24T12:00:00Z",
     ["2026-10-25T00:30:00.000Z", "2026-10-26T01:30:00.000Z"]),
])
def test_fall_back_fires_a_repeated_local_time_once(zone, expression, start, expected):
    assert fires(expression, zone, start, 2) == expected


def test_an_hourly_schedule_through_the_fall_back_hour_fires_each_wall_time_once():
    # 00:00, 01:00 (EDT) then 02:00 (EST): the second 01:00 (EST) is not a new occurrence.
    got = fires("0 * * * *", "America/New_York", "2026-11-01T03:30:00Z", 3)
    assert got == ["2026-11-01T04:00:00.000Z", "2026-11-01T05:00:00.000Z",
                   "2026-11-01T07:00:00.000Z"]


def test_next_after_a_time_inside_the_repeated_hour_is_after_it():
    schedule = parse_schedule("*/15 * * * *", "America/New_York")
    # 01:50 EST (second pass) is 06:50Z; the next occurrence is 02:00 EST = 07:00Z, not the
    # already-fired 01:00-01:45 EDT wall times.
    assert ids.format_ts(schedule.next_after(ms("2026-11-01T06:50:00Z"), 0)) == (
        "2026-11-01T07:00:00.000Z")


def test_every_counts_from_its_anchor():
    schedule = parse_schedule("@every 1h30m", "UTC")
    anchor = ms("2026-01-01T00:00:10Z")
    assert ids.format_ts(schedule.next_after(anchor, anchor)) == "2026-01-01T01:30:10.000Z"
    assert ids.format_ts(schedule.next_after(ms("2026-01-01T02:00:00Z"), anchor)) == (
        "2026-01-01T03:00:10.000Z")


@pytest.mark.parametrize("expression", [
    "not a valid cron", "0 0 0 0 0 0 0", "99 25 32 13 8", "*/0 * * * *", "", "60 * * * *",
    "* * 32 * *", "* * * 13 *", "@every 500ms", "@every soon", "0 0 30 2 *", 5,
])
def test_invalid_expressions_are_400(expression):
    with pytest.raises(InvalidRequestError):
        parse_schedule(expression, "UTC")


@pytest.mark.parametrize("zone", ["+05:00", "UTC+5", "EST", "PST", "Mars/Olympus", "", 3])
def test_offsets_abbreviations_and_unknown_zones_are_refused(zone):
    with pytest.raises(InvalidRequestError):
        parse_timezone(zone)


@pytest.mark.parametrize("zone", ["UTC", "America/New_York", "Europe/Berlin", "Asia/Kolkata"])
def test_iana_zones_are_accepted(zone):
    assert parse_timezone(zone) == zone
    zoneinfo.ZoneInfo(zone)


def test_tick_job_ids_are_deterministic_uuid7_per_tick():
    a = tick_job_id("ojs", "nightly", 1_770_892_200_000)
    assert a == tick_job_id("ojs", "nightly", 1_770_892_200_000)
    assert a != tick_job_id("ojs", "nightly", 1_770_892_201_000)
    assert a != tick_job_id("ojs", "hourly", 1_770_892_200_000)
    assert ids.is_uuid7(a)
    assert a < tick_job_id("ojs", "nightly", 1_770_892_201_000)  # time-ordered
    assert dt.datetime.fromtimestamp(int(a.replace("-", "")[:12], 16) / 1000, dt.UTC).year == 2026
