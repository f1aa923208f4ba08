"""The queue configuration document: parsing updates, merging, the wire form."""

import pytest

from ojs_nats.errors import InvalidRequestError, UnsupportedError, ValidationError
from ojs_nats.model import queue_config as qc


def test_update_keeps_only_named_fields_normalized():
    update = qc.parse_update({"concurrency": 5, "rate_limit": {"limit": 50, "period": "PT1S"}})
    assert update == {"concurrency": 5, "rate_limit": {"limit": 50, "period_ms": 1_000}}


def test_config_wrapper_is_unwrapped():
    assert qc.parse_update({"config": {"concurrency": 2}}) == {"concurrency": 2}


def test_merge_sets_present_fields_and_null_resets():
    stored = qc.merged(None, qc.parse_update({"concurrency": 5, "visibility_timeout": 30}))
    after = qc.merged(stored, qc.parse_update({"concurrency": None}))
    assert after["concurrency"] is None
    assert after["visibility_timeout"] == 30


def test_max_size_and_overflow_policy_are_the_backpressure_bound():
    update = qc.parse_update({"max_size": 100, "overflow_policy": "drop_oldest"})
    assert update["backpressure"] == {"max_depth": 100, "strategy": "drop_oldest",
                                      "warning_threshold": 0.8}


def test_default_retry_is_validated_like_a_jobs_policy():
    update = qc.parse_update({"default_retry": {"max_attempts": 7}})
    assert qc.default_retry(qc.merged(None, update)).max_attempts == 7
    with pytest.raises(ValidationError):
        qc.parse_update({"default_retry": {"backoff_coefficient": 0.5}})


def test_wire_form_shows_durations():
    config = qc.merged(None, qc.parse_update({"rate_limit": {"max_per_second": 5},
                                              "default_retry": {"max_attempts": 2}}))
    wire = qc.to_wire(config)
    assert wire["rate_limit"] == {"limit": 5, "period": "PT1S"}
    assert wire["default_retry"]["max_attempts"] == 2
    assert wire["paused"] is False


@pytest.mark.parametrize("body", [
    {"concurrency": -1}, {"concurrency": "5"}, {"paused": "yes"}, {"colour": "red"},
    {"rate_limit": {"limit": 5}}, {"backpressure": {"max_depth": 10, "strategy": "explode"}},
    {"backpressure": {"max_depth": -1}}, {"backpressure": {"max_depth": 5, "warning_threshold": 2}},
    {"retention": {"completed": "a week"}}, {"retention": {"active": "P1D"}},
    {"dead_letter_ttl": "PT0.5S"}, {"visibility_timeout": 0},
    {"max_size": 10, "backpressure": {"max_depth": 10}},
])
def test_invalid_settings_are_invalid_request(body):
    with pytest.raises(InvalidRequestError):
        qc.parse_update(body)


def test_documented_but_unimplemented_settings_are_refused_by_name():
    with pytest.raises(UnsupportedError) as info:
        qc.parse_update({"dead_letter_queue": "dlq", "concurrency": 1})
    assert info.value.details["fields"] == ["dead_letter_queue"]
