"""The eight job states and the legal edges between them (ojs-core.md §6, ADR-002).

Every transition the service makes is checked against `LEGAL` before it is written, so an illegal
request is refused with 409 and never stored.
"""

from __future__ import annotations

import enum

from ojs_nats.errors import ConflictError


class State(enum.StrEnum):
    SCHEDULED = "scheduled"
    AVAILABLE = "available"
    PENDING = "pending"
    ACTIVE = "active"
    COMPLETED = "completed"
    RETRYABLE = "retryable"
    CANCELLED = "cancelled"
    DISCARDED = "discarded"


TERMINAL = frozenset({State.COMPLETED, State.CANCELLED, State.DISCARDED})
#: States in which a job waits to run: expiry (`expires_at`) applies only here.
WAITING = frozenset({State.SCHEDULED, State.AVAILABLE, State.PENDING, State.RETRYABLE})
#: States counted as "still running" for overlap and uniqueness checks.
NON_TERMINAL = frozenset(State) - TERMINAL

LEGAL: dict[State, frozenset[State]] = {
    State.SCHEDULED: frozenset({State.AVAILABLE, State.CANCELLED, State.DISCARDED}),
    State.PENDING: frozenset({State.AVAILABLE, State.CANCELLED, State.DISCARDED}),
    State.AVAILABLE: frozenset({State.ACTIVE, State.CANCELLED, State.DISCARDED}),
    # active -> available: visibility expiry and NACK with requeue (worker-protocol §5).
    State.ACTIVE: frozenset(
        {State.COMPLETED, State.RETRYABLE, State.DISCARDED, State.CANCELLED, State.AVAILABLE}
    ),
    State.RETRYABLE: frozenset({State.AVAILABLE, State.CANCELLED, State.DISCARDED}),
    State.COMPLETED: frozenset(),
    State.CANCELLED: frozenset(),
    # discarded -> available: manual retry from the dead-letter queue (ojs-dead-letter.md).
    State.DISCARDED: frozenset({State.AVAILABLE}),
}


def check(current: str, target: State, job_id: str, action: str) -> None:
    """Raise 409 unless `current -> target` is a legal edge."""
    state = State(current)
    if target not in LEGAL[state]:
        raise ConflictError(
            f"Cannot {action} job {job_id} in state '{state}'.",
            job_id=job_id,
            current_state=str(state),
            target_state=str(target),
        )
