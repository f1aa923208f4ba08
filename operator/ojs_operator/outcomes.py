"""Outcomes of a reconciliation step, shared by both kinds: the status patch with its Ready and
Degraded conditions, and on failure the reason and when to try again (exponential backoff).
"""

from __future__ import annotations

from typing import Any

from ojs_operator import reconcile
from ojs_operator.context import Context, Memory, Outcome, Resource
from ojs_operator.gateway import GatewayRejectedError, GatewayUnavailableError

RECONCILED = "Reconciled"


def done(
    ctx: Context,
    res: Resource,
    status: dict[str, Any],
    message: str,
    reason: str = RECONCILED,
    ready: bool = True,
) -> Outcome:
    """The status to write (only what changed), with `observedGeneration` and conditions."""
    status = dict(status)
    status["observedGeneration"] = res.generation
    status["conditions"] = reconcile.conditions(
        res.status.get("conditions"), ready, reason, message, ctx.clock(), res.generation
    )
    return Outcome(status=reconcile.status_changes(res.status, status))


def failed(ctx: Context, res: Resource, memory: Memory, exc: Exception) -> Outcome:
    """Ready=False with the failure's reason; the next attempt waits 1, 2, 4, ... 60 s."""
    if isinstance(exc, GatewayUnavailableError):
        reason = "GatewayUnavailable"
    elif isinstance(exc, GatewayRejectedError):
        reason = "GatewayRejected"
    else:
        reason = "KubernetesError"
    delay = reconcile.backoff_s(memory.failures)
    memory.failures += 1
    memory.retry_at = ctx.monotonic() + delay
    outcome = done(ctx, res, {}, str(exc)[:1000], reason, ready=False)
    outcome.error = f"{reason}: {exc}"
    # A rejected request is retried by the timer (with backoff) in case the gateway changes,
    # but the change handler should not spin on it: the resource itself needs fixing.
    outcome.retryable = not isinstance(exc, GatewayRejectedError)
    outcome.retry_in_s = delay
    return outcome


def succeeded(ctx: Context, memory: Memory) -> None:
    memory.failures = 0
    memory.retry_at = 0.0
    memory.next_resync = ctx.monotonic() + ctx.settings.resync_s
