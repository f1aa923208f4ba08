"""Replicas from queue depth, as pure functions: no I/O, no clock (callers pass `now`).

Depth is waiting + in flight (available + active), what KEDA's nats-jetstream scaler counts as
a consumer's lag (pending + ack pending). Scale-up waits `scaleUpCooldownSeconds` after the
last change; scale-down follows the HPA's stabilization window: the target is the highest
replica count wanted during the last `scaleDownCooldownSeconds`, so a drained queue goes back
to `minReplicas` that long after it drained, and a dip in depth does not flap the Deployment.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from typing import Any

#: (monotonic time, replicas wanted then) of each depth reading inside the window.
Sample = tuple[float, int]


@dataclasses.dataclass(frozen=True, slots=True)
class Policy:
    min_replicas: int
    max_replicas: int
    per_replica: int
    activation: int
    up_cooldown_s: float
    down_cooldown_s: float
    polling_s: float

    @classmethod
    def from_spec(cls, autoscaling: Mapping[str, Any]) -> Policy:
        """From a defaulted `spec.autoscaling` (see reconcile.queue_spec)."""
        lowest = int(autoscaling["minReplicas"])
        return cls(
            min_replicas=lowest,
            max_replicas=max(lowest, int(autoscaling["maxReplicas"])),
            per_replica=max(1, int(autoscaling["targetWaitingJobsPerReplica"])),
            activation=int(autoscaling["activationThreshold"]),
            up_cooldown_s=float(autoscaling["scaleUpCooldownSeconds"]),
            down_cooldown_s=float(autoscaling["scaleDownCooldownSeconds"]),
            polling_s=float(autoscaling["pollingIntervalSeconds"]),
        )

    def clamp(self, replicas: int) -> int:
        return max(self.min_replicas, min(self.max_replicas, replicas))


@dataclasses.dataclass(frozen=True, slots=True)
class Decision:
    #: What the target's replicas should be (equal to the current count: leave it).
    replicas: int
    reason: str


def wanted(depth: int, current: int, paused: bool, policy: Policy) -> int:
    """Replicas the depth asks for right now, before cooldowns.

    A paused queue hands out nothing, so it wants only the minimum. From zero replicas, fewer
    jobs than the activation threshold wake nothing; once running, any job keeps one replica.
    """
    if paused:
        return policy.min_replicas
    if current == 0 and depth < policy.activation:
        return policy.clamp(0)
    return policy.clamp(math.ceil(max(0, depth) / policy.per_replica))


def remember(
    history: Sequence[Sample], now: float, want: int, current: int, policy: Policy
) -> list[Sample]:
    """The window's samples after this reading. An empty history (operator just started)
    begins with the current count, as if it had been wanted: a restart never scales down
    before a whole window was observed."""
    start = now - policy.down_cooldown_s
    kept = [s for s in history if s[0] >= start] if history else [(now, current)]
    kept.append((now, want))
    return kept


def decide(
    current: int,
    want: int,
    history: Sequence[Sample],
    since_last_scale_s: float | None,
    policy: Policy,
) -> Decision:
    """What to set the target to, given this reading (already in `history`)."""
    if current < policy.min_replicas:
        return Decision(policy.min_replicas, "below minReplicas")
    if current > policy.max_replicas:
        return Decision(policy.max_replicas, "above maxReplicas")
    if want > current:
        if since_last_scale_s is not None and since_last_scale_s < policy.up_cooldown_s:
            return Decision(current, "scale-up cooldown")
        return Decision(want, "queue depth")
    stabilized = max([want, *(replicas for _, replicas in history)])
    if stabilized < current:
        return Decision(stabilized, "queue depth (stable for the scale-down cooldown)")
    return Decision(current, "in range")
