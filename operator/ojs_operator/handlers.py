"""kopf handlers, kept thin: kwargs in, a use case (`queues`, `cronjobs`) run, its outcome out
as a status patch and, on failure, kopf's retry errors with our backoff.

Loaded by `kopf run -m ojs_operator.handlers` (what `ojs-nats-operator` runs). Both kinds get
a create/update/resume handler (apply the spec), a timer (drift, status, autoscaling) and a
delete handler, which makes kopf hold its finalizer until the gateway forgot the resource.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import kopf

from ojs_operator import crds, cronjobs, queues, reconcile
from ojs_operator.context import Context, Memory, Outcome, Resource
from ojs_operator.gateway import Gateway
from ojs_operator.kube import Kube, load_config
from ojs_operator.settings import Settings

#: The timers' period. Each resource's own intervals (polling, resync, backoff) are counted
#: in its memory, so a tick with nothing due costs no request at all.
TICK_S = 1.0
FINALIZER = f"{crds.GROUP}/finalizer"
QUEUES = (crds.GROUP, crds.VERSION, crds.QUEUE_PLURAL)
CRONS = (crds.GROUP, crds.VERSION, crds.CRON_PLURAL)

Claims = kopf.Index[str, tuple[str, str, str]]


# ---------------------------------------------------------------- operator lifecycle


@kopf.on.startup()
async def configure(*, settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    config = Settings.from_env()
    _configure_logging(config.log_level)
    # Progress and the last-handled spec live in annotations: our status schemas are strict,
    # so the API server would prune kopf's default `status.kopf`.
    settings.persistence.finalizer = FINALIZER
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=crds.GROUP)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=crds.GROUP, key="last-handled-configuration"
    )
    # Kubernetes Events for problems only: successes are in the logs and the status.
    settings.posting.level = logging.WARNING
    memo["ctx"] = Context(
        settings=config,
        gateway=Gateway(config.gateway_url, config.gateway_token, config.gateway_timeout_s),
        kube=Kube(load_config(config.kubeconfig)),
    )
    logging.getLogger(__name__).info(
        "ojs-nats operator: gateway %s, resync every %gs", config.gateway_url, config.resync_s
    )


@kopf.on.cleanup()
async def close(*, memo: kopf.Memo, **_: Any) -> None:
    ctx: Context | None = memo.get("ctx")
    if ctx is not None:
        await ctx.gateway.aclose()
        ctx.kube.close()


# ---------------------------------------------------------------- Queue


@kopf.index(*QUEUES)
def queue_claims(
    *, name: str, namespace: str | None, spec: kopf.Spec, meta: kopf.Meta, **_: Any
) -> dict[str, tuple[str, str, str]]:
    """Which resources claim which gateway queue (two namespaces may name the same one)."""
    created = str(meta.get("creationTimestamp") or "")
    return {reconcile.queue_name(name, spec): (created, str(namespace), name)}


@kopf.on.resume(*QUEUES)
@kopf.on.create(*QUEUES)
@kopf.on.update(*QUEUES)
async def queue_changed(
    *,
    body: kopf.Body,
    memo: kopf.Memo,
    patch: kopf.Patch,
    logger: kopf.Logger,
    **kwargs: Any,
) -> None:
    res = _resource(body, kwargs["queue_claims"], reconcile.queue_name)
    _report(await queues.apply(memo["ctx"], res, _memory(memo), logger), patch, raising=True)


@kopf.timer(*QUEUES, interval=TICK_S, initial_delay=TICK_S)
async def queue_tick(
    *,
    body: kopf.Body,
    memo: kopf.Memo,
    patch: kopf.Patch,
    logger: kopf.Logger,
    **kwargs: Any,
) -> None:
    res = _resource(body, kwargs["queue_claims"], reconcile.queue_name)
    _report(await queues.tick(memo["ctx"], res, _memory(memo), logger), patch, logger=logger)


@kopf.on.delete(*QUEUES)
async def queue_deleted(
    *,
    body: kopf.Body,
    memo: kopf.Memo,
    logger: kopf.Logger,
    retry: int,
    **kwargs: Any,
) -> None:
    res = _resource(body, kwargs["queue_claims"], reconcile.queue_name)
    _raise_for(await queues.remove(memo["ctx"], res, logger), retry)


# ---------------------------------------------------------------- CronJob (ojscronjobs)


@kopf.index(*CRONS)
def cron_claims(
    *, name: str, namespace: str | None, spec: kopf.Spec, meta: kopf.Meta, **_: Any
) -> dict[str, tuple[str, str, str]]:
    created = str(meta.get("creationTimestamp") or "")
    return {reconcile.cron_name(name, spec): (created, str(namespace), name)}


@kopf.on.resume(*CRONS)
@kopf.on.create(*CRONS)
@kopf.on.update(*CRONS)
async def cron_changed(
    *,
    body: kopf.Body,
    memo: kopf.Memo,
    patch: kopf.Patch,
    logger: kopf.Logger,
    **kwargs: Any,
) -> None:
    res = _resource(body, kwargs["cron_claims"], reconcile.cron_name)
    _report(await cronjobs.apply(memo["ctx"], res, _memory(memo), logger), patch, raising=True)


@kopf.timer(*CRONS, interval=TICK_S, initial_delay=TICK_S)
async def cron_tick(
    *,
    body: kopf.Body,
    memo: kopf.Memo,
    patch: kopf.Patch,
    logger: kopf.Logger,
    **kwargs: Any,
) -> None:
    res = _resource(body, kwargs["cron_claims"], reconcile.cron_name)
    _report(await cronjobs.tick(memo["ctx"], res, _memory(memo), logger), patch, logger=logger)


@kopf.on.delete(*CRONS)
async def cron_deleted(
    *,
    body: kopf.Body,
    memo: kopf.Memo,
    logger: kopf.Logger,
    retry: int,
    **kwargs: Any,
) -> None:
    res = _resource(body, kwargs["cron_claims"], reconcile.cron_name)
    _raise_for(await cronjobs.remove(memo["ctx"], res, logger), retry)


# ---------------------------------------------------------------- translation


def _resource(
    body: kopf.Body, claims: Claims, name_of: Callable[[str, Mapping[str, Any]], str]
) -> Resource:
    meta = body.get("metadata") or {}
    spec = dict(body.get("spec") or {})
    namespace, name = str(meta.get("namespace")), str(meta.get("name"))
    holders: Iterable[tuple[str, str, str]] = claims.get(name_of(name, spec), [])
    owner = reconcile.owner(holders)
    return Resource(
        namespace=namespace,
        name=name,
        uid=str(meta.get("uid") or ""),
        generation=meta.get("generation"),
        spec=spec,
        status=dict(body.get("status") or {}),
        owned=owner is None or owner == (namespace, name),
        owner="/".join(owner) if owner else "",
    )


def _memory(memo: kopf.Memo) -> Memory:
    memory: Memory = memo.setdefault("memory", Memory())
    return memory


def _report(
    outcome: Outcome, patch: kopf.Patch, raising: bool = False, logger: kopf.Logger | None = None
) -> None:
    """Write the status; a change handler also raises so kopf retries (after our backoff) or
    gives up on this version of the spec; a timer just logs, its memory holds the backoff."""
    for key, value in outcome.status.items():
        patch.status[key] = value
    if outcome.error is None:
        return
    if raising and not outcome.retryable:
        raise kopf.PermanentError(outcome.error)
    message = f"{outcome.error} (next attempt in {outcome.retry_in_s:g}s)"
    if raising:
        raise kopf.TemporaryError(message, delay=outcome.retry_in_s)
    if logger is not None:
        logger.warning(message)


def _raise_for(outcome: Outcome, retry: int) -> None:
    """Keep the finalizer (kopf retries the delete handler) until the cleanup succeeded."""
    if outcome.error is not None:
        raise kopf.TemporaryError(outcome.error, delay=reconcile.backoff_s(retry))


class _QuietTimers(logging.Filter):
    """Drop kopf's "Timer '…' succeeded." lines: with a one-second tick they would be most of
    the log (and, at INFO, one Kubernetes Event per resource and second)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not (message.startswith("Timer ") and message.endswith(" succeeded."))


def _configure_logging(level: str) -> None:
    objects = logging.getLogger("kopf.objects")
    if not any(isinstance(f, _QuietTimers) for f in objects.filters):  # once per process
        objects.addFilter(_QuietTimers())
    # httpx logs every request at INFO; keep that for --debug.
    logging.getLogger("httpx").setLevel(logging.DEBUG if level == "debug" else logging.WARNING)
    logging.getLogger("ojs_operator").setLevel(level.upper())
