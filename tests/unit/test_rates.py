"""Window limits as GCRA, and job-level rate-limit policies (model/rates.py)."""

import pytest

from ojs_nats.errors import InvalidRequestError
from ojs_nats.model.rates import Rate, parse_job_limit, parse_rate, refund, take


def run(rate, times, wanted=1):
    """Starts granted at each time (ms), carrying the arrival time along."""
    tat, granted = None, []
    for now in times:
        grant = take(rate, tat, now, wanted)
        tat = grant.tat if grant.granted else tat
        granted.append(grant.granted)
    return granted


def test_rate_allows_a_burst_of_limit_after_idle_then_the_long_run_rate():
    rate = Rate(50, 1_000)
    first = take(rate, None, 0, 100)
    assert first.granted == 50
    assert take(rate, first.tat, 0, 1).granted == 0
    assert take(rate, first.tat, 20, 5).granted == 1  # one more every 20 ms
    # Over 10 s of constant demand: the burst, then exactly 50 per second.
    starts = sum(run(rate, range(0, 10_000, 5), wanted=10))
    assert 50 * 10 <= starts <= 50 * 10 + 50


def test_throttle_spaces_starts_evenly():
    rate = Rate(1, 1_000, burst=False)
    assert run(rate, [0, 5, 999, 1_000, 1_500, 2_000]) == [1, 0, 0, 1, 0, 1]


def test_denied_grant_says_how_long_to_wait():
    rate = Rate(1, 1_000)
    first = take(rate, None, 10_000, 1)
    denied = take(rate, first.tat, 10_005, 1)
    assert denied.granted == 0
    assert denied.wait_ms == 995
    assert denied.tat == first.tat


def test_refund_returns_unused_starts_but_not_into_the_past():
    rate = Rate(10, 1_000)
    grant = take(rate, None, 0, 10)
    assert take(rate, refund(rate, grant.tat, 3, 0), 0, 10).granted == 3
    assert refund(rate, 100.0, 5, now=50) == 50.0


def test_job_limit_without_key_is_shared_per_queue():
    a = parse_job_limit({"max_per_second": 1}, "rate-limit-test")
    b = parse_job_limit({"max_per_second": 1}, "rate-limit-test")
    other = parse_job_limit({"max_per_second": 1}, "other")
    assert a.partition == b.partition != other.partition
    assert a.rate == Rate(1, 1_000)


def test_job_limit_with_key_is_shared_across_queues():
    a = parse_job_limit({"key": "tenant:acme", "concurrency": 3}, "q1")
    b = parse_job_limit({"key": "tenant:acme", "concurrency": 3}, "q2")
    assert a.partition == b.partition
    assert a.concurrency == 3


def test_job_limit_spec_form():
    limit = parse_job_limit({"key": "stripe-api", "rate": {"limit": 100, "period": "PT1M"},
                             "throttle": {"limit": 10, "period": "PT1S"}, "on_limit": "drop"}, "q")
    assert limit.rate == Rate(100, 60_000)
    assert limit.throttle == Rate(10, 1_000, burst=False)
    assert limit.on_limit == "drop"


@pytest.mark.parametrize("raw", [
    [], {"max_per_second": 0}, {"max_per_second": "1"}, {"key": "bad key"}, {"key": 5},
    {"concurrency": -1}, {"concurrency": True}, {"rate": {"limit": 1}},
    {"rate": {"limit": 0, "period": "PT1S"}}, {"rate": {"limit": 1, "period": "soon"}},
    {"on_limit": "explode"}, {"per_minute": 5},
])
def test_invalid_job_limits_are_invalid_request(raw):
    with pytest.raises(InvalidRequestError):
        parse_job_limit(raw, "q")


def test_parse_rate_accepts_max_per_second():
    assert parse_rate({"max_per_second": 5}, "rate_limit") == Rate(5, 1_000)
