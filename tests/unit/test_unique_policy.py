"""Unique-job policies: validation, the uniqueness key and the scope test (model/unique.py)."""

import hashlib

import pytest

from ojs_nats.errors import InvalidRequestError
from ojs_nats.model.unique import DEFAULT_STATES, UniquePolicy, fingerprint, holds, parse_policy


def key(policy, job_type="a.b", queue="q", args=None, meta=None):
    return fingerprint(parse_policy(policy), job_type, queue, args or [], meta or {})


def test_defaults_are_type_only_non_terminal_states_and_reject():
    policy = parse_policy({})
    assert policy.keys == {"type"}
    assert policy.states == DEFAULT_STATES
    assert policy.on_conflict == "reject"
    assert policy.period_ms is None


def test_type_is_always_part_of_the_key():
    assert parse_policy({"keys": ["args"]}).keys == {"type", "args"}
    assert key({"keys": ["args"]}, "a.b") != key({"keys": ["args"]}, "a.c")


def test_key_is_sha256_of_canonical_json_with_sorted_keys():
    expected = hashlib.sha256(b'{"args":[{"a":1,"b":2}],"queue":"q","type":"a.b"}').hexdigest()
    assert key({"keys": ["type", "queue", "args"]}, args=[{"b": 2, "a": 1}]) == expected


def test_key_ignores_dimensions_not_chosen():
    assert key({"keys": ["type"]}, queue="x", args=[1]) == key({"keys": ["type"]}, queue="y")
    assert key({"keys": ["queue"]}, queue="x") != key({"keys": ["queue"]}, queue="y")


def test_args_keys_select_values_from_the_object_elements_of_args():
    policy = {"keys": ["args"], "args_keys": ["user_id"]}
    assert key(policy, args=[{"user_id": 42, "locale": "en"}]) == key(
        policy, args=[{"user_id": 42, "locale": "fr"}])
    assert key(policy, args=[{"user_id": 42}]) != key(policy, args=[{"user_id": 43}])


def test_args_keys_naming_a_missing_key_is_invalid():
    with pytest.raises(InvalidRequestError) as info:
        key({"keys": ["args"], "args_keys": ["nope"]}, args=[{"user_id": 1}])
    assert info.value.details["field"] == "unique.args_keys"


def test_meta_keys_select_meta_values():
    policy = {"keys": ["meta"], "meta_keys": ["tenant_id"]}
    assert key(policy, meta={"tenant_id": "acme", "trace_id": "1"}) == key(
        policy, meta={"tenant_id": "acme", "trace_id": "2"})
    assert key(policy, meta={"tenant_id": "acme"}) != key(policy, meta={"tenant_id": "globex"})


def test_unicode_is_normalized_and_integral_floats_equal_ints():
    composed, decomposed = "caf\u00e9", "cafe\u0301"
    assert key({"keys": ["args"]}, args=[composed]) == key({"keys": ["args"]}, args=[decomposed])
    assert key({"keys": ["args"]}, args=[1.0]) == key({"keys": ["args"]}, args=[1])


@pytest.mark.parametrize("policy", [
    {"keys": ["meta"]}, {"keys": ["meta"], "meta_keys": []}, {"keys": ["type", "color"]},
    {"keys": "type"}, {"states": ["done"]}, {"on_conflict": "merge"}, {"period": "an hour"},
    {"period": 3600}, {"period": "PT0S"}, {"args_keys": "user_id"}, {"unique_by": ["type"]}, [],
])
def test_invalid_policies_are_invalid_request(policy):
    with pytest.raises(InvalidRequestError):
        parse_policy(policy)


def test_use_existing_is_ignore():
    assert parse_policy({"on_conflict": "use_existing"}).on_conflict == "ignore"


def test_a_job_holds_its_key_only_in_the_policy_states_and_within_the_period():
    policy = parse_policy({"states": ["available"], "period": "PT2S"})
    assert holds(policy, "available", created_ms=1_000, now=2_999)
    assert not holds(policy, "available", created_ms=1_000, now=3_000)
    assert not holds(policy, "active", created_ms=1_000, now=1_001)
    forever = parse_policy({})
    assert holds(forever, "retryable", created_ms=0, now=10**12)
    assert not holds(forever, "completed", created_ms=0, now=1)


def test_policy_survives_its_record_form():
    policy = parse_policy({"keys": ["args", "meta"], "args_keys": ["a"], "meta_keys": ["t"],
                           "period": "PT1H", "states": ["completed"], "on_conflict": "replace"})
    assert UniquePolicy.from_record(policy.to_record()) == policy
