import datetime as dt

import pytest

from ojs_nats.model import ids


def test_uuid7_has_version_variant_and_lowercase():
    value = ids.uuid7()
    assert ids.is_uuid7(value)
    assert value == value.lower()
    assert value[14] == "7"
    assert value[19] in "89ab"


def test_uuid7_from_one_process_sort_in_creation_order_even_within_a_millisecond():
    values = [ids.uuid7(at_ms=1_700_000_000_000) for _ in range(5000)]
    assert values == sorted(values)
    assert len(set(values)) == len(values)


@pytest.mark.parametrize("bad", [
    "not-a-uuid", "", "01941ad4-8b2e-4c3a-b5d1-f0e2a3b4c5d6",  # v4
    "01941AD4-8B2E-7C3A-B5D1-F0E2A3B4C5D6",  # uppercase
    "01941ad4-8b2e-7c3a-c5d1-f0e2a3b4c5d6",  # wrong variant
    42, None,
])
def test_is_uuid7_rejects(bad):
    assert not ids.is_uuid7(bad)


def test_format_ts_is_rfc3339_utc_with_milliseconds():
    assert ids.format_ts(0) == "1970-01-01T00:00:00.000Z"
    assert ids.format_ts(1_770_892_200_123) == "2026-02-12T10:30:00.123Z"


def test_format_ts_is_right_across_second_boundaries_in_any_order():
    # format_ts keeps the last second's text; stamps that go back and forth must not reuse it.
    for ms in (1_770_892_200_999, 1_770_892_201_000, 1_770_892_200_001, 1_770_892_201_500):
        seconds, millis = divmod(ms, 1000)
        expected = dt.datetime.fromtimestamp(seconds, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S")
        assert ids.format_ts(ms) == f"{expected}.{millis:03d}Z"


@pytest.mark.parametrize(("text", "expected"), [
    ("2026-02-12T10:30:00Z", 1_770_892_200_000),
    ("2026-02-12T10:30:00.123Z", 1_770_892_200_123),
    ("2026-02-12T11:30:00+01:00", 1_770_892_200_000),
    ("2026-02-12T05:30:00.5-05:00", 1_770_892_200_500),
])
def test_parse_ts(text, expected):
    assert ids.parse_ts(text) == expected


@pytest.mark.parametrize("bad", ["2026-02-12T10:30:00", "2026-02-12", "yesterday", ""])
def test_parse_ts_requires_a_zone(bad):
    with pytest.raises(ValueError, match="RFC 3339"):
        ids.parse_ts(bad)


def test_uuid7_ms_reads_back_the_time_of_the_id():
    assert ids.uuid7_ms(ids.uuid7(1_770_892_200_123)) >= 1_770_892_200_123
    assert ids.uuid7_ms(ids.derived_uuid7(1_770_892_200_123, "x")) == 1_770_892_200_123
