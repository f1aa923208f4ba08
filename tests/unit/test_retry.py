import pytest

from ojs_nats.errors import ValidationError
from ojs_nats.model.retry import (
    DEFAULT_POLICY,
    RetryPolicy,
    delay_ms,
    matches_non_retryable,
    parse_policy,
)


def no_jitter(**fields):
    return parse_policy({"jitter": False, **fields})


@pytest.mark.parametrize(("fields", "expected"), [
    ({"initial_interval": "PT1S", "backoff_coefficient": 2.0}, [1000, 2000, 4000, 8000]),
    ({"initial_interval": "PT1S", "backoff_coefficient": 1.0}, [1000, 1000, 1000, 1000]),
    ({"initial_interval": "PT1S", "backoff_strategy": "linear"}, [1000, 2000, 3000, 4000]),
    ({"initial_interval": "PT1S", "backoff_coefficient": 10, "max_interval": "PT2S"},
     [1000, 2000, 2000, 2000]),
    ({"initial_interval": "PT1S", "backoff_strategy": "polynomial", "backoff_coefficient": 2},
     [1000, 4000, 9000, 16000]),
    ({"initial_interval_ms": 500, "backoff_strategy": "constant"}, [500, 500, 500, 500]),
])
def test_backoff_strategies(fields, expected):
    policy = no_jitter(**fields)
    assert [delay_ms(policy, n) for n in (1, 2, 3, 4)] == expected


def test_jitter_stays_within_half_to_one_and_a_half_and_under_the_cap():
    policy = parse_policy({"initial_interval": "PT2S", "backoff_coefficient": 1.0,
                           "max_interval": "PT2.5S"})
    assert delay_ms(policy, 1, uniform=lambda a, b: a) == 1000
    assert delay_ms(policy, 1, uniform=lambda a, b: 1.499) == 2500  # capped after jitter


def test_partial_policy_merges_with_defaults():
    policy = parse_policy({"max_attempts": 10, "on_exhaustion": "dead_letter"})
    assert policy.max_attempts == 10
    assert policy.on_exhaustion == "dead_letter"
    assert policy.initial_interval_ms == DEFAULT_POLICY.initial_interval_ms
    assert policy.jitter is True


@pytest.mark.parametrize(("fields", "field"), [
    ({"max_attempts": -1}, "max_attempts"),
    ({"max_attempts": 1.5}, "max_attempts"),
    ({"backoff_coefficient": 0.5}, "backoff_coefficient"),
    ({"initial_interval": "soon"}, "initial_interval"),
    ({"initial_interval": "PT0S"}, "initial_interval"),
    ({"initial_interval": "PT10S", "max_interval": "PT1S"}, "max_interval"),
    ({"jitter": "yes"}, "jitter"),
    ({"non_retryable_errors": "FatalError"}, "non_retryable_errors"),
    ({"on_exhaustion": "explode"}, "on_exhaustion"),
    ({"backoff_strategy": "random"}, "backoff_strategy"),
])
def test_invalid_policies_are_422_naming_the_field(fields, field):
    with pytest.raises(ValidationError) as info:
        parse_policy(fields)
    assert info.value.status == 422
    assert field in info.value.message


def test_unknown_policy_keys_are_ignored():
    assert parse_policy({"max_attempts": 2, "x_vendor": True}).max_attempts == 2


@pytest.mark.parametrize(("entries", "error_type", "matches"), [
    (["validation.payload_invalid"], "validation.payload_invalid", True),
    (["validation.payload_invalid"], "validation.schema_error", False),
    (["auth.*"], "auth.token_expired", True),
    (["auth.*"], "auth", False),
    (["auth.*"], "external.auth.failure", False),
    (["Auth.*"], "Auth.TokenExpired", True),
    ([], "anything", False),
])
def test_non_retryable_matching(entries, error_type, matches):
    policy = RetryPolicy(non_retryable_errors=tuple(entries))
    assert matches_non_retryable(policy, error_type) is matches


def test_policy_survives_the_record_round_trip():
    policy = parse_policy({"max_attempts": 7, "non_retryable_errors": ["a.*"]})
    assert RetryPolicy.from_record(policy.to_record()) == policy
