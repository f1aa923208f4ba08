"""Desired state, as pure functions of a resource: no I/O, no clock (callers pass `now`).

What a Queue or CronJob resource asks of the gateway (the queue configuration document, the cron
registration), what differs from what the gateway reports (drift), the status and conditions to
write, the KEDA ScaledObject to emit, and who owns a gateway name several resources claim.
"""

from __future__ import annotations

import copy
import datetime as dt
from collections.abc import Iterable, Mapping
from typing import Any

from ojs_nats.model.durations import parse_duration_ms
from ojs_operator import crds

Doc = dict[str, Any]

#: Every setting of the gateway's queue configuration document the operator owns. A setting the
#: resource leaves out is sent as null (reset), so the Queue is applied as a whole.
QUEUE_SETTINGS = (
    "paused",
    "concurrency",
    "rate_limit",
    "throttle",
    "backpressure",
    "default_retry",
    "retention",
    "dead_letter_ttl",
    "visibility_timeout",
    "default_timeout",
)
#: Retry delays after consecutive failures to reach the gateway: 1, 2, 4, ... at most 60 s.
BACKOFF_BASE_S = 1.0
BACKOFF_MAX_S = 60.0

_QUEUE_SPEC = crds.queue_spec_schema()
_CRON_SPEC = crds.cron_spec_schema()


def backoff_s(failures: int) -> float:
    """Delay before the next attempt after `failures` consecutive failures (0: the first)."""
    return float(min(BACKOFF_MAX_S, BACKOFF_BASE_S * 2 ** min(failures, 16)))


def with_defaults(schema: Mapping[str, Any], value: Any) -> Any:
    """`value` with the schema's defaults filled in, as the API server defaults on write.

    kmock (and an object written before a default was added) skips that step, so the operator
    applies the same rule itself: a default applies where the property is absent but its
    parent object is present.
    """
    if isinstance(value, dict) and schema.get("type") == "object":
        out = dict(value)
        for name, child in (schema.get("properties") or {}).items():
            if name not in out and "default" in child:
                out[name] = copy.deepcopy(child["default"])
            if name in out:
                out[name] = with_defaults(child, out[name])
        return out
    if isinstance(value, list) and isinstance(schema.get("items"), Mapping):
        return [with_defaults(schema["items"], item) for item in value]
    return value


# ---------------------------------------------------------------- Queue → configuration


def queue_spec(spec: Mapping[str, Any]) -> Doc:
    return dict(with_defaults(_QUEUE_SPEC, dict(spec)))


def queue_name(name: str, spec: Mapping[str, Any]) -> str:
    return str(spec.get("queueName") or name)


def queue_config(spec: Mapping[str, Any]) -> Doc:
    """The full configuration document (gateway wire names) a Queue spec asks for."""
    spec = queue_spec(spec)
    limits = spec.get("rateLimit") or {}
    bound = spec.get("backpressure") or {}
    retention = {k: v for k, v in (spec.get("retention") or {}).items() if v}
    config: Doc = dict.fromkeys(QUEUE_SETTINGS)
    config["paused"] = bool(spec.get("paused", False))
    config["concurrency"] = limits.get("concurrency")
    config["rate_limit"] = _window(limits.get("window"))
    config["throttle"] = _window(limits.get("throttle"))
    if bound.get("maxDepth"):  # 0 means unbounded
        config["backpressure"] = {
            "max_depth": bound["maxDepth"],
            "strategy": bound.get("strategy", "reject"),
            "warning_threshold": bound.get("warningThreshold", 0.8),
        }
    if spec.get("retry"):
        config["default_retry"] = retry_policy(spec["retry"])
    config["retention"] = retention or None
    config["dead_letter_ttl"] = (spec.get("deadLetter") or {}).get("retention")
    config["visibility_timeout"] = spec.get("visibilityTimeoutSeconds")
    config["default_timeout"] = spec.get("defaultTimeoutSeconds")
    return config


def retry_policy(retry: Mapping[str, Any]) -> Doc:
    """A CRD retry block in the OJS wire form (ojs-retry.md)."""
    names = {
        "maxAttempts": "max_attempts",
        "initialInterval": "initial_interval",
        "backoffCoefficient": "backoff_coefficient",
        "maxInterval": "max_interval",
        "jitter": "jitter",
        "nonRetryableErrors": "non_retryable_errors",
        "onExhaustion": "on_exhaustion",
    }
    return {wire: retry[field] for field, wire in names.items() if field in retry}


def config_drift(desired: Mapping[str, Any], actual: Mapping[str, Any] | None) -> Doc:
    """The settings to PUT so the gateway matches `desired` (empty: nothing differs).

    Compared after normalizing what the gateway rewrites (durations become milliseconds: it
    answers PT60S as PT1M), so a resource in sync never causes a write.
    """
    if actual is None:
        return dict(desired)
    return {
        name: value
        for name, value in desired.items()
        if _normal(name, value) != _normal(name, _actual_setting(name, value, actual.get(name)))
    }


def _actual_setting(name: str, desired: Any, actual: Any) -> Any:
    """Only the parts of a retry policy the resource sets are compared: the gateway fills in
    the rest (backoff_strategy, for one) with its own defaults."""
    if name == "default_retry" and isinstance(desired, dict) and isinstance(actual, dict):
        return {key: actual.get(key) for key in desired}
    return actual


def _normal(name: str, value: Any) -> Any:
    if value is None:
        return None
    if name in ("rate_limit", "throttle"):
        return (value.get("limit"), _ms(value.get("period")))
    if name == "retention":
        return {state: _ms(text) for state, text in value.items() if text}
    if name == "dead_letter_ttl":
        return _ms(value)
    if name == "backpressure":
        return (
            value.get("max_depth"),
            value.get("strategy"),
            float(value.get("warning_threshold", 0.8)),
        )
    if name == "default_retry":
        out = dict(value)
        for key in ("initial_interval", "max_interval"):
            if key in out:
                out[key] = _ms(out[key])
        if "backoff_coefficient" in out:
            out["backoff_coefficient"] = float(out["backoff_coefficient"])
        return out
    return value


def _window(window: Mapping[str, Any] | None) -> Doc | None:
    if not window:
        return None
    return {"limit": window["limit"], "period": window["period"]}


def _ms(text: Any) -> Any:
    if not isinstance(text, str):
        return text
    try:
        return parse_duration_ms(text)
    except ValueError:
        return text


def cleared_config() -> Doc:
    """Every setting reset to the gateway's default (and the queue resumed)."""
    return dict.fromkeys(QUEUE_SETTINGS)


# ---------------------------------------------------------------- CronJob → registration


def cron_spec(spec: Mapping[str, Any]) -> Doc:
    return dict(with_defaults(_CRON_SPEC, dict(spec)))


def cron_name(name: str, spec: Mapping[str, Any]) -> str:
    return str(spec.get("cronName") or name)


def cron_registration(name: str, spec: Mapping[str, Any]) -> Doc:
    """The `POST /cron` body (ojs-cron.md §8.1, the gateway's `job_template` form)."""
    spec = cron_spec(spec)
    template = spec["jobTemplate"]
    options = template.get("options") or {}
    wire_options: Doc = {"queue": template.get("queue", "default")}
    for field, wire in (
        ("priority", "priority"),
        ("timeoutMs", "timeout_ms"),
        ("visibilityTimeoutMs", "visibility_timeout_ms"),
        ("tags", "tags"),
    ):
        if field in options:
            wire_options[wire] = options[field]
    if options.get("retry"):
        wire_options["retry"] = retry_policy(options["retry"])
    job: Doc = {"type": template["type"], "args": list(template.get("args") or [])}
    job["options"] = wire_options
    if options.get("meta"):
        job["meta"] = dict(options["meta"])
    return {
        "name": cron_name(name, spec),
        "expression": spec["schedule"],
        "timezone": spec.get("timeZone", "UTC"),
        "overlap_policy": spec.get("overlapPolicy", "skip"),
        "enabled": not spec.get("suspend", False),
        "description": spec.get("description"),
        "job_template": job,
    }


def cron_drift(desired: Mapping[str, Any], actual: Mapping[str, Any] | None) -> str:
    """What brings the gateway in line: `none`, `toggle` (only enabled differs: PATCH keeps
    the schedule's anchor and run count) or `register` (upsert the whole definition)."""
    if actual is None:
        return "register"
    fields = ("expression", "timezone", "overlap_policy", "description", "job_template")
    if any(desired.get(f) != actual.get(f) for f in fields):
        return "register"
    return "toggle" if bool(desired["enabled"]) != bool(actual.get("enabled")) else "none"


def cron_status(name: str, actual: Mapping[str, Any]) -> Doc:
    status: Doc = {"cronName": name, "runCount": int(actual.get("run_count") or 0)}
    status["lastFireTime"] = actual.get("last_run_at")
    status["nextFireTime"] = actual.get("next_run_at")
    status["lastJobId"] = actual.get("last_job_id")
    return status


# ---------------------------------------------------------------- status and conditions

READY, DEGRADED = "Ready", "Degraded"


def rfc3339(now: float) -> str:
    moment = dt.datetime.fromtimestamp(now, tz=dt.UTC).replace(microsecond=0)
    return moment.isoformat().replace("+00:00", "Z")


def conditions(
    previous: Iterable[Mapping[str, Any]] | None,
    ready: bool,
    reason: str,
    message: str,
    now: float,
    generation: int | None,
) -> list[Doc]:
    """Ready and Degraded (metav1.Condition), keeping `lastTransitionTime` when a status did
    not change. Degraded is the negation of Ready, with the same reason and message."""
    before = {c.get("type"): c for c in previous or ()}
    out = []
    for kind, status in ((READY, ready), (DEGRADED, not ready)):
        text = "True" if status else "False"
        old = before.get(kind) or {}
        condition: Doc = {
            "type": kind,
            "status": text,
            "reason": reason,
            "message": message,
            "lastTransitionTime": old.get("lastTransitionTime")
            if old.get("status") == text
            else rfc3339(now),
        }
        if generation is not None:
            condition["observedGeneration"] = generation
        out.append(condition)
    return out


def contains(actual: Any, wanted: Any) -> bool:
    """`actual` holds everything `wanted` does (more keys are fine: an API server and its
    webhooks add defaults, which must not read as drift)."""
    if isinstance(wanted, Mapping):
        return isinstance(actual, Mapping) and all(
            key in actual and contains(actual[key], value) for key, value in wanted.items()
        )
    if isinstance(wanted, list):
        return (
            isinstance(actual, list)
            and len(actual) == len(wanted)
            and all(contains(a, w) for a, w in zip(actual, wanted, strict=True))
        )
    return bool(actual == wanted)


def status_changes(current: Mapping[str, Any], wanted: Mapping[str, Any]) -> Doc:
    """The status fields to patch: only those whose value differs (no write when in sync)."""
    return {key: value for key, value in wanted.items() if current.get(key) != value}


# ---------------------------------------------------------------- names claimed twice


def owner(claims: Iterable[tuple[str, str, str]]) -> tuple[str, str] | None:
    """Of the resources (creationTimestamp, namespace, name) claiming one gateway name, the
    one that manages it: the oldest, ties broken by namespace then name."""
    ordered = sorted(claims)
    return (ordered[0][1], ordered[0][2]) if ordered else None


# ---------------------------------------------------------------- KEDA


def encode_queue(queue: str) -> str:
    """A queue name inside a subject or consumer name (as `ojs_nats.storage.names` spells it:
    `.` becomes `_`, which queue names cannot contain)."""
    return queue.replace(".", "_")


def ready_stream(ojs_namespace: str) -> str:
    return f"{ojs_namespace.upper()}_READY"


def ready_consumer(queue: str, priority: int) -> str:
    sign = "n" if priority < 0 else "p"
    return f"ready_{encode_queue(queue)}_{sign}{abs(priority)}"


def scaled_object(
    *,
    name: str,
    namespace: str,
    owner_uid: str,
    queue: str,
    autoscaling: Mapping[str, Any],
    ojs_namespace: str,
    monitor_url: str,
) -> Doc:
    """A KEDA ScaledObject scaling the target like the operator would: one `nats-jetstream`
    trigger per priority, on the lag of the gateway's ready consumer for (queue, priority).

    KEDA activates a scaler when lag > activationLagThreshold; ours activates at depth >=
    activationThreshold, hence the minus one.
    """
    target = autoscaling["targetRef"]
    use_https = monitor_url.startswith("https://")
    # KEDA's endpoint is host:port, without the scheme.
    monitor_endpoint = monitor_url.split("://", 1)[-1].rstrip("/")
    triggers = [
        {
            "type": "nats-jetstream",
            "metadata": {
                "natsServerMonitoringEndpoint": monitor_endpoint,
                "account": "$G",
                "stream": ready_stream(ojs_namespace),
                "consumer": ready_consumer(queue, int(priority)),
                "lagThreshold": str(autoscaling["targetWaitingJobsPerReplica"]),
                "activationLagThreshold": str(max(0, autoscaling["activationThreshold"] - 1)),
                "useHttps": str(use_https).lower(),
            },
        }
        for priority in autoscaling.get("priorities") or [0]
    ]
    behavior = {
        "scaleUp": {"stabilizationWindowSeconds": autoscaling["scaleUpCooldownSeconds"]},
        "scaleDown": {"stabilizationWindowSeconds": autoscaling["scaleDownCooldownSeconds"]},
    }
    return {
        "apiVersion": "keda.sh/v1alpha1",
        "kind": "ScaledObject",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": {
                "app.kubernetes.io/managed-by": "ojs-nats-operator",
                "ojs-nats.io/queue": queue,
            },
            "ownerReferences": [
                {
                    "apiVersion": crds.API_VERSION,
                    "kind": crds.QUEUE_KIND,
                    "name": name,
                    "uid": owner_uid,
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ],
        },
        "spec": {
            "scaleTargetRef": {
                "apiVersion": target.get("apiVersion", "apps/v1"),
                "kind": target.get("kind", "Deployment"),
                "name": target["name"],
            },
            "minReplicaCount": autoscaling["minReplicas"],
            "maxReplicaCount": autoscaling["maxReplicas"],
            "pollingInterval": autoscaling["pollingIntervalSeconds"],
            "cooldownPeriod": autoscaling["scaleDownCooldownSeconds"],
            "advanced": {"horizontalPodAutoscalerConfig": {"behavior": behavior}},
            "triggers": triggers,
        },
    }
