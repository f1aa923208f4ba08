"""The order one FETCH serves its queues in: strict, round robin, weighted."""

import collections
import random

import pytest

from ojs_nats.errors import InvalidRequestError
from ojs_nats.model.fairness import order


def firsts(strategy, weights=None, n=6000):
    rng = random.Random(7)
    return collections.Counter(order(["a", "b", "c"], strategy, weights, rng.random)[0]
                               for _ in range(n))


def test_strict_is_left_to_right_and_the_default():
    assert order(["c", "a", "b"]) == ["c", "a", "b"]
    assert order(["c", "a", "b"], "strict", {"a": 9}) == ["c", "a", "b"]


def test_round_robin_puts_each_queue_first_equally_often():
    counts = firsts("round_robin")
    assert all(1800 < counts[q] < 2200 for q in "abc")


def test_weighted_puts_queues_first_in_proportion_to_their_weight():
    counts = firsts("weighted", {"a": 3, "b": 2, "c": 1})
    assert counts["a"] > counts["b"] > counts["c"] > 0
    assert 0.4 < counts["a"] / 6000 < 0.6


def test_weights_alone_mean_weighted_and_weight_zero_goes_last():
    rng = random.Random(1)
    for _ in range(100):
        assert order(["a", "b", "c"], None, {"a": 0}, rng.random)[-1] == "a"


@pytest.mark.parametrize(("strategy", "weights"), [
    ("fastest", None), ("weighted", {"a": -1}), ("weighted", {"a": "high"}),
    ("weighted", ["a"]), ("weighted", {"a": True}),
])
def test_bad_strategy_or_weights_are_invalid_request(strategy, weights):
    with pytest.raises(InvalidRequestError):
        order(["a"], strategy, weights)
