"""Replicas from queue depth (pure): bounds, activation, cooldowns, the scale-down window."""

from __future__ import annotations

import pytest
from ojs_operator.scaling import Decision, Policy, decide, remember, wanted

POLICY = Policy(
    min_replicas=0,
    max_replicas=4,
    per_replica=100,
    activation=5,
    up_cooldown_s=10,
    down_cooldown_s=60,
    polling_s=5,
)


@pytest.mark.parametrize(
    ("depth", "current", "paused", "expected"),
    [
        (500, 1, False, 4),  # ceil(500 / 100) = 5, capped at max
        (250, 1, False, 3),
        (0, 3, False, 0),  # scale to zero (after the window, see decide)
        (4, 0, False, 0),  # below the activation threshold: nothing wakes up
        (5, 0, False, 1),
        (1, 2, False, 1),  # running: any job keeps one replica
        (900, 2, True, 0),  # paused: nothing can be fetched
    ],
)
def test_wanted_replicas(depth, current, paused, expected):
    assert wanted(depth, current, paused, POLICY) == expected


def test_minimum_above_zero_is_kept_even_when_idle():
    policy = Policy(2, 4, 100, 1, 0, 0, 1)
    assert wanted(0, 3, False, policy) == 2
    assert wanted(0, 3, True, policy) == 2


def test_scale_up_is_immediate_unless_the_last_change_was_too_recent():
    history = remember([], 100.0, 4, 1, POLICY)
    assert decide(1, 4, history, None, POLICY) == Decision(4, "queue depth")
    assert decide(1, 4, history, 30.0, POLICY).replicas == 4
    assert decide(1, 4, history, 3.0, POLICY) == Decision(1, "scale-up cooldown")


def test_scale_down_waits_until_higher_readings_leave_the_window():
    history: list = []
    for t, want in [(0, 4), (5, 4), (10, 0), (15, 0)]:
        history = remember(history, float(t), want, 4, POLICY)
    assert decide(4, 0, history, 100.0, POLICY).replicas == 4
    for t in (60, 65, 70):
        history = remember(history, float(t), 0, 4, POLICY)
    # at 70 the readings of 0 and 5 (4 replicas) are older than the 60 s window
    assert decide(4, 0, history, 100.0, POLICY) == Decision(
        0, "queue depth (stable for the scale-down cooldown)"
    )


def test_scale_down_steps_to_the_highest_reading_still_in_the_window():
    history: list = []
    for t, want in [(0, 4), (30, 2), (61, 0)]:
        history = remember(history, float(t), want, 4, POLICY)
    assert decide(4, 0, history, 100.0, POLICY).replicas == 2


def test_a_fresh_history_counts_the_current_replicas_as_wanted():
    """After a restart nothing is known: no scale-down before a whole window was seen."""
    history = remember([], 0.0, 0, 3, POLICY)
    assert history == [(0.0, 3), (0.0, 0)]
    assert decide(3, 0, history, None, POLICY).replicas == 3
    history = remember(history, 61.0, 0, 3, POLICY)
    assert decide(3, 0, history, None, POLICY).replicas == 0


def test_bounds_apply_at_once_whatever_the_cooldowns():
    policy = Policy(2, 5, 100, 1, 600, 600, 5)
    history = remember([], 0.0, 2, 7, policy)
    assert decide(7, 2, history, 1.0, policy) == Decision(5, "above maxReplicas")
    assert decide(1, 2, history, 1.0, policy) == Decision(2, "below minReplicas")
