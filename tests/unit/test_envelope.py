import pytest

from ojs_nats.errors import InvalidRequestError
from ojs_nats.model.envelope import parse_submission
from ojs_nats.model.lifecycle import State

NOW = 1_770_892_200_000


def parse(body):
    return parse_submission(body, NOW)


def test_minimal_job_gets_defaults():
    sub = parse({"type": "email.send", "args": []})
    job = sub.job
    assert job["queue"] == "default"
    assert job["priority"] == 0
    assert job["attempt"] == 0
    assert job["max_attempts"] == 3
    assert job["meta"] == {}
    assert job["specversion"] == "1.0"
    assert sub.initial_state(NOW) is State.AVAILABLE


def test_options_win_over_top_level_fields():
    sub = parse({"type": "a.b", "args": [], "queue": "top", "priority": 1,
                 "options": {"queue": "opt", "priority": 5}})
    assert (sub.queue, sub.job["priority"]) == ("opt", 5)


def test_unknown_fields_are_echoed_and_system_fields_dropped():
    sub = parse({"type": "a.b", "args": [], "x_custom": {"n": 1}, "state": "completed",
                 "attempt": 9, "result": "forged"})
    assert sub.job["x_custom"] == {"n": 1}
    assert sub.job["attempt"] == 0
    assert "state" not in sub.job
    assert "result" not in sub.job


def test_metadata_option_is_merged_into_meta():
    sub = parse({"type": "a.b", "args": [], "meta": {"a": 1},
                 "options": {"metadata": {"b": 2}}})
    assert sub.job["meta"] == {"a": 1, "b": 2}


def test_relative_and_absolute_schedules():
    later = parse({"type": "a.b", "args": [], "options": {"scheduled_at": "+PT2S"}})
    assert later.scheduled_ms == NOW + 2000
    assert later.initial_state(NOW) is State.SCHEDULED
    assert later.job["scheduled_at"] == "2026-02-12T10:30:02.000Z"
    past = parse({"type": "a.b", "args": [],
                  "options": {"delay_until": "2020-01-01T00:00:00Z"}})
    assert past.initial_state(NOW) is State.AVAILABLE
    assert past.job["scheduled_at"] == "2020-01-01T00:00:00Z"  # echoed as sent


def test_pending_option():
    assert parse({"type": "a.b", "args": [], "options": {"pending": True}}).initial_state(
        NOW) is State.PENDING


@pytest.mark.parametrize("body", [
    {"args": []},
    {"type": "Email.Send", "args": []},
    {"type": "email send", "args": []},
    {"type": "1email.send", "args": []},
    {"type": "", "args": []},
    {"type": 7, "args": []},
    {"type": "a.b"},
    {"type": "a.b", "args": {"a": 1}},
    {"type": "a.b", "args": None},
    {"type": "a.b", "args": "x"},
    {"type": "a.b", "args": [], "options": {"queue": "Default"}},
    {"type": "a.b", "args": [], "options": {"queue": "my queue"}},
    {"type": "a.b", "args": [], "options": {"queue": "-x"}},
    {"type": "a.b", "args": [], "id": "not-a-uuid"},
    {"type": "a.b", "args": [], "id": "01941ad4-8b2e-4c3a-b5d1-f0e2a3b4c5d6"},
    {"type": "a.b", "args": [], "options": {"priority": 101}},
    {"type": "a.b", "args": [], "options": {"priority": -101}},
    {"type": "a.b", "args": [], "options": {"priority": "high"}},
    {"type": "a.b", "args": [], "options": {"priority": True}},
    {"type": "a.b", "args": [], "options": {"timeout_ms": -5}},
    {"type": "a.b", "args": [], "options": {"scheduled_at": "tomorrow"}},
    {"type": "a.b", "args": [], "options": {"expires_at": "2026-01-01T00:00:00"}},
    {"type": "a.b", "args": [], "meta": []},
    {"type": "a.b", "args": [], "options": []},
    {"type": "a.b", "args": [], "options": {"tags": [1]}},
    {"type": "a.b", "args": [], "specversion": "2.0"},
    "not an object",
])
def test_invalid_envelopes_are_400(body):
    with pytest.raises(InvalidRequestError) as info:
        parse(body)
    assert info.value.status == 400
    assert info.value.message


def test_missing_type_names_the_field():
    with pytest.raises(InvalidRequestError) as info:
        parse({"args": []})
    assert info.value.details["field"] == "type"


@pytest.mark.parametrize("unique", [
    {"keys": ["type", "color"]}, {"on_conflict": "merge"}, {"states": ["done"]},
    {"period": "an hour"}, {"keys": ["meta"]}, {"keys": "type"}, {"period": "PT0S"},
    {"unique_by": ["type"]},
])
def test_invalid_unique_policy_is_400_invalid_request(unique):
    with pytest.raises(InvalidRequestError):
        parse({"type": "a.b", "args": [], "options": {"unique": unique}})


def test_hyphenated_type_segments_are_accepted():
    assert parse({"type": "retry.test.attempt-counter", "args": []}).job["type"] == (
        "retry.test.attempt-counter")


TIMING_CASES = [
    ("timeout", 5, "timeout_ms", 5000),
    ("timeout_ms", 700, "timeout_ms", 700),
    ("visibility_timeout_ms", 900, "visibility_timeout_ms", 900),
    ("heartbeat_timeout", 2, "heartbeat_timeout_ms", 2000),
    ("heartbeat_timeout_ms", 1500, "heartbeat_timeout_ms", 1500),
    ("scheduled_at", "+PT3S", "scheduled_at", "2026-02-12T10:30:03.000Z"),
    ("delay_until", "+PT4S", "scheduled_at", "2026-02-12T10:30:04.000Z"),
    ("expires_at", "+PT1M", "expires_at", "2026-02-12T10:31:00.000Z"),
]


@pytest.mark.parametrize("where", ["top", "options"])
@pytest.mark.parametrize(("field", "value", "echoed", "expected"), TIMING_CASES)
def test_each_timing_field_is_read_at_either_level(where, field, value, echoed, expected):
    # Jobs without timing fields skip their parsing: each one alone must still be seen.
    body = {"type": "a.b", "args": []}
    (body if where == "top" else body.setdefault("options", {}))[field] = value
    assert parse(body).job[echoed] == expected


def test_visibility_timeout_in_seconds_is_read_at_the_top_level():
    assert parse({"type": "a.b", "args": [], "visibility_timeout": 3}).visibility_ms == 3000


def test_a_job_without_timing_fields_has_none():
    sub = parse({"type": "a.b", "args": [], "options": {"queue": "q"}, "x_extra": 1})
    assert (sub.timeout_ms, sub.visibility_ms, sub.heartbeat_ms) == (None, None, None)
    assert (sub.scheduled_ms, sub.expires_ms) == (None, None)
    assert next(iter(sub.job)) == "x_extra"  # unknown fields first, as before
    assert not {"timeout_ms", "scheduled_at", "expires_at"} & sub.job.keys()
