"""The order in which one FETCH serves its queues (ojs-fair-scheduling.md §5.2, §7): `strict`
(left to right, the default the suites require), or `weighted`/`round_robin`, drawn afresh per
fetch as a weighted random permutation, so no replica keeps scheduling state.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping, Sequence

from ojs_nats.errors import InvalidRequestError

STRATEGIES = ("strict", "round_robin", "weighted")


def order(
    queues: Sequence[str],
    strategy: object = None,
    weights: object = None,
    uniform: Callable[[], float] = random.random,
) -> list[str]:
    """The queues in the order this fetch should try them.

    Raises:
        InvalidRequestError: an unknown strategy, or weights that are not non-negative numbers.
    """
    if strategy is None:
        strategy = "weighted" if weights is not None else "strict"
    if strategy not in STRATEGIES:
        raise InvalidRequestError(
            "strategy must be strict, round_robin or weighted.", field="strategy"
        )
    table = _weights(weights)
    if strategy == "strict":
        return list(queues)
    if strategy == "round_robin":
        table = {}

    def key(queue: str) -> float:
        weight = table.get(queue, 1.0)
        return uniform() ** (1.0 / weight) if weight > 0 else -1.0

    return sorted(queues, key=key, reverse=True)


def _weights(raw: object) -> dict[str, float]:
    if raw is None:
        return {}
    if not isinstance(raw, Mapping) or not all(
        isinstance(w, int | float) and not isinstance(w, bool) and w >= 0 for w in raw.values()
    ):
        raise InvalidRequestError(
            "weights must map queue names to non-negative numbers.", field="weights"
        )
    return {str(q): float(w) for q, w in raw.items()}
