"""Queue resources: configure the queue through the gateway, watch its depth, scale workers.

`apply` runs on create/update/resume, `tick` on the per-resource timer (drift check every
resync interval, depth and autoscaling every polling interval), `remove` from the finalizer.
Every step is idempotent: it reads what the gateway and the API hold and writes only the
difference. An unreachable gateway becomes the GatewayUnavailable condition and a retry with
backoff; the process never exits over it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from ojs_operator import outcomes, reconcile, scaling
from ojs_operator.context import BlockedError, Context, Log, Memory, Outcome, Resource
from ojs_operator.gateway import GatewayRejectedError, GatewayUnavailableError
from ojs_operator.kube import KubeError

CONFIGURED = "queue configured through the gateway"


async def apply(ctx: Context, res: Resource, memory: Memory, log: Log) -> Outcome:
    """Make the gateway's queue configuration (and the KEDA ScaledObject) match the spec."""
    if not res.owned:
        return _conflict(ctx, res)
    try:
        async with memory.lock:
            status = await _sync(ctx, res, log)
    except (GatewayUnavailableError, GatewayRejectedError, KubeError) as exc:
        return outcomes.failed(ctx, res, memory, exc)
    except BlockedError as exc:
        return outcomes.done(ctx, res, {}, str(exc), exc.reason, ready=False)
    outcomes.succeeded(ctx, memory)
    return outcomes.done(ctx, res, status, CONFIGURED)


async def tick(ctx: Context, res: Resource, memory: Memory, log: Log) -> Outcome:
    """The periodic part: drift correction, depth, autoscaling. Cheap when nothing is due."""
    now = ctx.monotonic()
    if not res.owned:
        return _conflict(ctx, res)
    if now < memory.retry_at or (now < memory.next_resync and now < memory.next_poll):
        return Outcome()
    spec = reconcile.queue_spec(res.spec)
    status: dict[str, Any] = {}
    try:
        async with memory.lock:
            if now >= memory.next_resync:
                status.update(await _sync(ctx, res, log))
                memory.next_resync = now + ctx.settings.resync_s
            if now >= memory.next_poll:
                status.update(await _observe(ctx, res, spec, memory, log))
                memory.next_poll = now + _polling_s(ctx, spec)
    except (GatewayUnavailableError, GatewayRejectedError, KubeError) as exc:
        return outcomes.failed(ctx, res, memory, exc)
    except BlockedError as exc:
        # Checked again at the next resync and poll; no backoff, nothing failed.
        memory.next_resync = max(memory.next_resync, now + ctx.settings.resync_s)
        memory.next_poll = now + _polling_s(ctx, spec)
        return outcomes.done(ctx, res, status, str(exc), exc.reason, ready=False)
    memory.failures = 0
    return outcomes.done(ctx, res, status, CONFIGURED)


async def remove(ctx: Context, res: Resource, log: Log) -> Outcome:
    """Finalizer: drop the queue's configuration (and our ScaledObject) from the cluster.

    A queue that still holds unfinished jobs cannot be deleted (the gateway answers 409);
    its settings are reset to the defaults instead (which resumes it), so the jobs stay
    runnable and the resource can go.
    """
    if not res.owned:
        log.info("queue %s is managed by %s: left as it is", _queue(res), res.owner)
        return Outcome()
    queue = _queue(res)
    try:
        if res.status.get("scaledObject"):
            await ctx.kube.delete_scaled_object(res.namespace, str(res.status["scaledObject"]))
        try:
            removed = await ctx.gateway.delete_queue(queue)
            log.info("queue %s %s", queue, "deleted" if removed else "was already gone")
        except GatewayRejectedError as exc:
            if exc.status != 409:
                raise
            await ctx.gateway.put_queue_config(queue, reconcile.cleared_config())
            log.warning("queue %s still holds jobs: settings reset, queue kept (%s)", queue, exc)
    except (GatewayUnavailableError, GatewayRejectedError, KubeError) as exc:
        return Outcome(error=f"{type(exc).__name__}: {exc}", retryable=True)
    return Outcome()


# ---------------------------------------------------------------- steps


async def _sync(ctx: Context, res: Resource, log: Log) -> dict[str, Any]:
    queue = _queue(res)
    spec = reconcile.queue_spec(res.spec)
    desired = reconcile.queue_config(spec)
    drift = reconcile.config_drift(desired, await ctx.gateway.queue_config(queue))
    if drift:
        await ctx.gateway.put_queue_config(queue, drift)
        log.info("queue %s configured: %s", queue, ", ".join(sorted(drift)))
    status: dict[str, Any] = {"queueName": queue, "paused": desired["paused"]}
    status["scaledObject"] = await _sync_scaled_object(ctx, res, spec, log)
    return status


async def _sync_scaled_object(
    ctx: Context, res: Resource, spec: Mapping[str, Any], log: Log
) -> str | None:
    """KEDA mode: keep one ScaledObject (named as the Queue) equal to what the spec asks for;
    otherwise remove the one we made earlier. Returns the name kept, if any."""
    autoscaling = spec.get("autoscaling") or {}
    keda = bool(autoscaling) and autoscaling["enabled"] and autoscaling["mode"] == "keda"
    if not keda:
        if res.status.get("scaledObject"):
            await ctx.kube.delete_scaled_object(res.namespace, str(res.status["scaledObject"]))
            log.info("KEDA ScaledObject %s removed", res.status["scaledObject"])
        return None
    if ctx.settings.nats_monitor_url is None:
        raise BlockedError(
            "KedaNotConfigured", "autoscaling.mode keda needs the operator's OJS_NATS_MONITOR_URL"
        )
    wanted = reconcile.scaled_object(
        name=res.name,
        namespace=res.namespace,
        owner_uid=res.uid,
        queue=_queue(res),
        autoscaling=autoscaling,
        ojs_namespace=ctx.settings.ojs_namespace,
        monitor_url=ctx.settings.nats_monitor_url,
    )
    current = await ctx.kube.scaled_object(res.namespace, res.name)
    if current is None:
        await ctx.kube.create_scaled_object(wanted)
        log.info("KEDA ScaledObject %s created", res.name)
    elif not reconcile.contains(
        current, {"metadata": {"labels": wanted["metadata"]["labels"]}, "spec": wanted["spec"]}
    ):
        await ctx.kube.patch_scaled_object(wanted)
        log.info("KEDA ScaledObject %s updated", res.name)
    return res.name


async def _observe(
    ctx: Context, res: Resource, spec: Mapping[str, Any], memory: Memory, log: Log
) -> dict[str, Any]:
    """Read depth from the gateway; in operator mode, scale the target by it."""
    stats = await ctx.gateway.queue_stats(_queue(res)) or {}
    active = int(stats.get("active", 0))
    depth = int(stats.get("available", 0)) + active
    paused = bool(stats.get("paused", False))
    status: dict[str, Any] = {"depth": depth, "active": active, "paused": paused}
    autoscaling = spec.get("autoscaling") or {}
    if autoscaling and autoscaling["enabled"]:
        status.update(await _autoscale(ctx, res, autoscaling, depth, paused, memory, log))
    return status


async def _autoscale(
    ctx: Context,
    res: Resource,
    autoscaling: Mapping[str, Any],
    depth: int,
    paused: bool,
    memory: Memory,
    log: Log,
) -> dict[str, Any]:
    target = str(autoscaling["targetRef"]["name"])
    deployment = await ctx.kube.deployment(res.namespace, target)
    if deployment is None:
        raise BlockedError("TargetNotFound", f"Deployment {res.namespace}/{target} not found")
    current = int((deployment.get("spec") or {}).get("replicas", 1))
    running = (deployment.get("status") or {}).get("replicas")
    if autoscaling["mode"] == "keda":  # KEDA decides; report what the Deployment has
        return {"currentReplicas": int(running if running is not None else current)}
    policy = scaling.Policy.from_spec(autoscaling)
    want = scaling.wanted(depth, current, paused, policy)
    memory.history = scaling.remember(memory.history, ctx.monotonic(), want, current, policy)
    decision = scaling.decide(current, want, memory.history, _since_scale(ctx, res), policy)
    status: dict[str, Any] = {"desiredReplicas": decision.replicas}
    if decision.replicas != current:
        await ctx.kube.scale_deployment(res.namespace, target, decision.replicas)
        status["lastScaleTime"] = reconcile.rfc3339(ctx.clock())
        log.info(
            "scaled Deployment %s from %d to %d replicas (depth %d: %s)",
            target,
            current,
            decision.replicas,
            depth,
            decision.reason,
        )
        current = decision.replicas
    status["currentReplicas"] = int(running if running is not None else current)
    return status


# ---------------------------------------------------------------- helpers


def _queue(res: Resource) -> str:
    return reconcile.queue_name(res.name, res.spec)


def _polling_s(ctx: Context, spec: Mapping[str, Any]) -> float:
    autoscaling = spec.get("autoscaling")
    return float(autoscaling["pollingIntervalSeconds"]) if autoscaling else ctx.settings.resync_s


def _since_scale(ctx: Context, res: Resource) -> float | None:
    raw = res.status.get("lastScaleTime")
    if not isinstance(raw, str):
        return None
    try:
        moment = dt.datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        return None
    return ctx.clock() - moment.timestamp()


def _conflict(ctx: Context, res: Resource) -> Outcome:
    message = f"queue {_queue(res)} is managed by Queue {res.owner}"
    status = {"queueName": _queue(res)}
    return outcomes.done(ctx, res, status, message, "NameConflict", ready=False)
