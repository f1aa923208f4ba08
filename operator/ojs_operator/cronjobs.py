"""CronJob resources (plural `ojscronjobs`): a cron registration in the gateway per resource.

`apply` on create/update/resume and `tick` every resync interval register, re-register or
toggle only what differs (a re-registration restarts the schedule's anchor, so it is avoided
when only `suspend` changed) and copy last/next fire time and last job id into the status;
`remove` unregisters from the finalizer. The gateway fires the jobs; the operator never does.
"""

from __future__ import annotations

from typing import Any

from ojs_operator import outcomes, reconcile
from ojs_operator.context import Context, Log, Memory, Outcome, Resource
from ojs_operator.gateway import GatewayRejectedError, GatewayUnavailableError


async def apply(ctx: Context, res: Resource, memory: Memory, log: Log) -> Outcome:
    """Make the gateway's registration match the spec; copy its fire times into the status."""
    if not res.owned:
        return _conflict(ctx, res)
    try:
        async with memory.lock:
            status = await _sync(ctx, res, log)
    except (GatewayUnavailableError, GatewayRejectedError) as exc:
        return outcomes.failed(ctx, res, memory, exc)
    outcomes.succeeded(ctx, memory)
    return outcomes.done(ctx, res, status, "cron job registered in the gateway")


async def tick(ctx: Context, res: Resource, memory: Memory, log: Log) -> Outcome:
    """Every resync interval (or after the backoff of a failure): `apply` again."""
    now = ctx.monotonic()
    if not res.owned:
        return _conflict(ctx, res)
    if now < memory.retry_at or now < memory.next_resync:
        return Outcome()
    return await apply(ctx, res, memory, log)


async def remove(ctx: Context, res: Resource, log: Log) -> Outcome:
    """Finalizer: unregister (jobs it already enqueued stay)."""
    name = _name(res)
    if not res.owned:
        log.info("cron job %s is managed by %s: left registered", name, res.owner)
        return Outcome()
    try:
        removed = await ctx.gateway.delete_cron(name)
    except (GatewayUnavailableError, GatewayRejectedError) as exc:
        return Outcome(error=f"{type(exc).__name__}: {exc}", retryable=True)
    log.info("cron job %s %s", name, "unregistered" if removed else "was not registered")
    return Outcome()


async def _sync(ctx: Context, res: Resource, log: Log) -> dict[str, Any]:
    name = _name(res)
    desired = reconcile.cron_registration(res.name, res.spec)
    actual = await ctx.gateway.cron(name)
    action = reconcile.cron_drift(desired, actual)
    if action == "register":
        actual = await ctx.gateway.register_cron(desired)
        log.info("cron job %s registered: %s", name, desired["expression"])
    elif action == "toggle":
        actual = await ctx.gateway.set_cron_enabled(name, bool(desired["enabled"]))
        log.info("cron job %s %s", name, "resumed" if desired["enabled"] else "suspended")
    assert actual is not None
    return reconcile.cron_status(name, actual)


def _name(res: Resource) -> str:
    return reconcile.cron_name(res.name, res.spec)


def _conflict(ctx: Context, res: Resource) -> Outcome:
    message = f"cron job {_name(res)} is managed by CronJob {res.owner}"
    status = {"cronName": _name(res)}
    return outcomes.done(ctx, res, status, message, "NameConflict", ready=False)
