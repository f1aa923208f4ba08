"""The `Queue` and `CronJob` CustomResourceDefinitions, as data: the one source of both.

The Helm chart ships the YAML this module writes (`make crds` writes `charts/ojs-nats/crds/`,
and a test fails when the committed files differ), and the operator imports the constants
(group, version, plurals) from here, so the two can never disagree. No kopf import: chart
tooling and tests load this module without the operator's dependencies.

Field names are Kubernetes-style camelCase; enum values are the OJS wire spellings
(`drop_oldest`, `dead_letter`, `cancel_previous`) so the operator passes them through as-is.
Patterns and ranges come from the gateway's own validation (`ojs_nats.model.envelope`).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from ojs_nats.model import cron as cron_model
from ojs_nats.model import envelope

GROUP = "ojs-nats.io"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
#: Category shared by both kinds: `kubectl get ojs` lists queues and cron jobs together.
CATEGORY = "ojs"

QUEUE_KIND, QUEUE_PLURAL, QUEUE_SINGULAR = "Queue", "queues", "queue"
QUEUE_SHORT_NAMES = ("ojsq",)
#: The kind is `CronJob`, but its plural and short names differ from batch/v1 CronJob's, so
#: `kubectl get cronjobs` keeps meaning the built-in; ours is `kubectl get ojscronjobs`
#: (or `ojscron`, or `cronjobs.ojs-nats.io`).
CRON_KIND, CRON_PLURAL, CRON_SINGULAR = "CronJob", "ojscronjobs", "ojscronjob"
CRON_SHORT_NAMES = ("ojscron",)

Schema = dict[str, Any]

#: ISO 8601 duration without years/months, as `ojs_nats.model.durations` accepts (PT30S, P7D).
#: RE2 (the API server's regex engine) has no look-ahead, so a bare "P"/"PT" is kept out by
#: minLength and the gateway rejects the rest.
DURATION_PATTERN = r"^P([0-9]+W)?([0-9]+D)?(T([0-9]+H)?([0-9]+M)?([0-9]+(\.[0-9]+)?S)?)?$"


def _str(description: str, **extra: Any) -> Schema:
    return {"type": "string", "description": description, **extra}


def _int(description: str, minimum: int | None = None, **extra: Any) -> Schema:
    schema: Schema = {"type": "integer", "description": description, **extra}
    if minimum is not None:
        schema["minimum"] = minimum
    return schema


def _bool(description: str, default: bool) -> Schema:
    return {"type": "boolean", "description": description, "default": default}


def _obj(description: str, properties: dict[str, Schema], **extra: Any) -> Schema:
    return {"type": "object", "description": description, "properties": properties, **extra}


def _duration(description: str, **extra: Any) -> Schema:
    return _str(description, pattern=DURATION_PATTERN, minLength=3, maxLength=64, **extra)


def _window(description: str) -> Schema:
    return _obj(
        description,
        {
            "limit": _int("Job starts allowed per period.", 1),
            "period": _duration("Length of the window, e.g. PT1M."),
        },
        required=["limit", "period"],
    )


def _queue_name(description: str, **extra: Any) -> Schema:
    return _str(
        description, pattern=envelope.QUEUE_RE.pattern, maxLength=envelope.MAX_QUEUE_LEN, **extra
    )


def _any_json(description: str) -> Schema:
    """A field that holds any JSON value (job args, meta): kept as given, not pruned."""
    return {"description": description, "x-kubernetes-preserve-unknown-fields": True}


def retry_policy_schema() -> Schema:
    """An OJS retry policy (ojs-retry.md) with the spec's defaults."""
    return _obj(
        "Retry policy (ojs-retry.md): attempts, backoff and what happens when they run out.",
        {
            "maxAttempts": _int("Total attempts including the first.", 1, default=3, maximum=1000),
            "initialInterval": _duration("Delay before the first retry.", default="PT1S"),
            "backoffCoefficient": {
                "type": "number",
                "minimum": 1,
                "maximum": 100,
                "default": 2.0,
                "description": "Multiplier between successive delays.",
            },
            "maxInterval": _duration("Cap on any single delay.", default="PT5M"),
            "jitter": _bool("Randomise delays so retries do not synchronise.", True),
            "nonRetryableErrors": {
                "type": "array",
                "items": {"type": "string"},
                "description": "Error types that are never retried.",
            },
            "onExhaustion": _str(
                "What happens after the last attempt fails.",
                enum=["discard", "dead_letter"],
                default="discard",
            ),
        },
    )


def condition_list_schema() -> Schema:
    """Standard `metav1.Condition` entries, one per type (Ready, Degraded)."""
    return {
        "type": "array",
        "description": "Current conditions (Ready, Degraded), one entry per type.",
        "x-kubernetes-list-type": "map",
        "x-kubernetes-list-map-keys": ["type"],
        "items": _obj(
            "A condition as metav1.Condition defines it.",
            {
                "type": _str("Condition type, e.g. Ready or Degraded.", maxLength=316),
                "status": _str("True, False or Unknown.", enum=["True", "False", "Unknown"]),
                "reason": _str("CamelCase reason for the last transition.", maxLength=1024),
                "message": _str("Human-readable detail.", maxLength=32768),
                "lastTransitionTime": _str("When the status last changed.", format="date-time"),
                "observedGeneration": _int(
                    "Generation the condition was computed for.", 0, format="int64"
                ),
            },
            required=["type", "status", "lastTransitionTime", "reason", "message"],
        ),
    }


def _status_common() -> dict[str, Schema]:
    return {
        "observedGeneration": _int("The .metadata.generation last reconciled.", 0, format="int64"),
        "conditions": condition_list_schema(),
    }


def autoscaling_schema() -> Schema:
    return _obj(
        "Scale a worker Deployment by this queue's depth (waiting + in-flight jobs).",
        {
            "enabled": _bool("Turn autoscaling on.", True),
            "mode": _str(
                "`operator`: the operator patches the Deployment's replicas itself; "
                "`keda`: it emits a KEDA ScaledObject (nats-jetstream trigger) instead.",
                enum=["operator", "keda"],
                default="operator",
            ),
            "targetRef": _obj(
                "The worker Deployment to scale, in the Queue's namespace.",
                {
                    "apiVersion": _str(
                        "API version of the target.", default="apps/v1", enum=["apps/v1"]
                    ),
                    "kind": _str("Kind of the target.", default="Deployment", enum=["Deployment"]),
                    "name": _str("Name of the target Deployment.", minLength=1, maxLength=253),
                },
                required=["name"],
            ),
            "minReplicas": _int(
                "Fewest replicas; 0 scales to zero when the queue is idle.",
                0,
                default=1,
                maximum=10000,
            ),
            "maxReplicas": _int("Most replicas.", 1, default=10, maximum=10000),
            "activationThreshold": _int(
                "Jobs (waiting + in flight) needed to scale up from zero replicas.",
                0,
                default=1,
            ),
            "targetWaitingJobsPerReplica": _int(
                "Desired replicas = ceil(depth / this), clamped to min/max.", 1, default=100
            ),
            "scaleUpCooldownSeconds": _int(
                "Least time after the last scale change before scaling up again.", 0, default=0
            ),
            "scaleDownCooldownSeconds": _int(
                "Scale down only to the highest replica count wanted during this many seconds "
                "(so a drained queue goes back to minReplicas this long after it drained).",
                0,
                default=300,
            ),
            "pollingIntervalSeconds": _int("How often depth is read.", 1, default=15, maximum=3600),
            "priorities": {
                "type": "array",
                "description": "mode keda: the job priorities to watch, one nats-jetstream "
                "trigger each (the operator's own scaling counts every priority).",
                "items": _int(
                    "A job priority.", envelope.MIN_PRIORITY, maximum=envelope.MAX_PRIORITY
                ),
                "default": [0],
                "maxItems": 201,
            },
        },
        required=["targetRef"],
        **{
            "x-kubernetes-validations": [
                {
                    "rule": "!has(self.minReplicas) || !has(self.maxReplicas) || "
                    "self.maxReplicas >= self.minReplicas",
                    "message": "maxReplicas must be at least minReplicas",
                },
            ]
        },
    )


def queue_spec_schema() -> Schema:
    return _obj(
        "Desired configuration of one OJS queue (ojs-queue-config.md).",
        {
            "queueName": _queue_name("OJS queue name; defaults to metadata.name."),
            "paused": _bool("Paused queues accept jobs but hand none to workers.", False),
            "rateLimit": _obj(
                "Limits on how fast jobs of this queue start (ojs-rate-limiting.md); they hold "
                "across every gateway replica.",
                {
                    "concurrency": _int("Most jobs active at once (0 runs none).", 0),
                    "window": _window(
                        "At most `limit` job starts per `period`, with bursts up to `limit`."
                    ),
                    "throttle": _window(
                        "At most `limit` job starts per `period`, evenly spaced (no burst)."
                    ),
                },
            ),
            "backpressure": _obj(
                "Bound on the queue and what PUSH does at the bound (ojs-backpressure.md).",
                {
                    "maxDepth": _int("Most non-terminal jobs; 0 means unbounded.", 0, default=0),
                    "strategy": _str(
                        "What PUSH does when the queue is full.",
                        enum=["reject", "block", "drop_oldest"],
                        default="reject",
                    ),
                    "warningThreshold": {
                        "type": "number",
                        "minimum": 0,
                        "maximum": 1,
                        "default": 0.8,
                        "description": "Fill ratio that emits a warning.",
                    },
                },
            ),
            "retry": retry_policy_schema(),
            "deadLetter": _obj(
                "Dead-letter handling of jobs that exhaust their retries.",
                {"retention": _duration("How long dead-lettered jobs are kept.", default="P7D")},
            ),
            "retention": _obj(
                "How long finished jobs stay readable, per final state (unset: the gateway's "
                "OJS_FINISHED_RETENTION_S).",
                {
                    state: _duration(f"Retention of {state} jobs, e.g. P1D.")
                    for state in ("completed", "cancelled", "discarded")
                },
            ),
            "visibilityTimeoutSeconds": _int(
                "Lease of a fetched job when neither the job nor the fetch sets one.", 1
            ),
            "defaultTimeoutSeconds": _int("Execution timeout of jobs that set none.", 1),
            "autoscaling": autoscaling_schema(),
        },
    )


def queue_status_schema() -> Schema:
    return _obj(
        "Observed state, written by the operator.",
        {
            "queueName": _str("The OJS queue this resource manages."),
            "depth": _int("Jobs waiting plus in flight, as last read.", 0, format="int64"),
            "active": _int("Jobs being worked on.", 0, format="int64"),
            "paused": {"type": "boolean", "description": "Paused as the gateway reports it."},
            "desiredReplicas": _int("Replicas the autoscaler wants.", 0, format="int32"),
            "currentReplicas": _int("Replicas the target Deployment has.", 0, format="int32"),
            "lastScaleTime": _str("When the target was last scaled.", format="date-time"),
            "scaledObject": _str("The KEDA ScaledObject kept for this queue (mode keda)."),
            **_status_common(),
        },
    )


def cron_spec_schema() -> Schema:
    return _obj(
        "A periodic job (ojs-cron.md).",
        {
            "cronName": _str(
                "Name of the registration in the gateway; defaults to metadata.name. Cron "
                "names are global to a gateway: set this when two namespaces use one name.",
                pattern=cron_model.NAME_RE.pattern,
                maxLength=cron_model.MAX_NAME_LEN,
            ),
            "schedule": _str(
                "Cron expression (5 or 6 fields, or @hourly, @daily, ...).",
                minLength=1,
                maxLength=256,
            ),
            "timeZone": _str(
                "IANA time zone the schedule is read in.", default="UTC", minLength=1, maxLength=64
            ),
            "jobTemplate": _obj(
                "The job each occurrence enqueues.",
                {
                    "type": _str(
                        "OJS job type.",
                        pattern=envelope.TYPE_RE.pattern,
                        maxLength=envelope.MAX_TYPE_LEN,
                    ),
                    "args": {
                        "type": "array",
                        "description": "Positional job arguments.",
                        "items": _any_json("Any JSON value."),
                    },
                    "queue": _queue_name("Queue the jobs go to.", default=envelope.DEFAULT_QUEUE),
                    "options": _obj(
                        "Job options applied to every job enqueued.",
                        {
                            "priority": _int(
                                "Higher runs first.",
                                envelope.MIN_PRIORITY,
                                maximum=envelope.MAX_PRIORITY,
                            ),
                            "timeoutMs": _int("Execution timeout in milliseconds.", 1),
                            "visibilityTimeoutMs": _int("Lease of a fetched job, ms.", 1),
                            "retry": retry_policy_schema(),
                            "tags": {
                                "type": "array",
                                "items": {"type": "string"},
                                "description": "Tags for filtering.",
                            },
                            "meta": {**_any_json("Metadata passed to each job."), "type": "object"},
                        },
                    ),
                },
                required=["type"],
            ),
            "overlapPolicy": _str(
                "What a new occurrence does while the last job still runs.",
                enum=["skip", "allow", "cancel_previous", "enqueue"],
                default="skip",
            ),
            "suspend": _bool("Suspended cron jobs stay registered but do not fire.", False),
            "description": _str("What this cron job is for.", maxLength=1024),
        },
        required=["schedule", "jobTemplate"],
    )


def cron_status_schema() -> Schema:
    return _obj(
        "Observed state, written by the operator.",
        {
            "lastFireTime": _str("When a job was last enqueued.", format="date-time"),
            "nextFireTime": _str("When the next job is due.", format="date-time"),
            "lastJobId": _str("Id of the job enqueued last."),
            "runCount": _int("Jobs enqueued since registration.", 0, format="int64"),
            "cronName": _str("The gateway registration this resource manages."),
            **_status_common(),
        },
    )


def _crd(
    kind: str,
    plural: str,
    singular: str,
    short_names: tuple[str, ...],
    spec: Schema,
    status: Schema,
    columns: list[Schema],
) -> dict[str, Any]:
    root = _obj(
        f"{kind} of ojs-nats.",
        {
            "apiVersion": {"type": "string"},
            "kind": {"type": "string"},
            "metadata": {"type": "object"},
            "spec": spec,
            "status": status,
        },
        required=["spec"],
    )
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": f"{plural}.{GROUP}",
            "labels": {
                "app.kubernetes.io/name": "ojs-nats",
                "app.kubernetes.io/part-of": "ojs-nats",
            },
        },
        "spec": {
            "group": GROUP,
            "scope": "Namespaced",
            "names": {
                "kind": kind,
                "listKind": f"{kind}List",
                "plural": plural,
                "singular": singular,
                "shortNames": list(short_names),
                "categories": [CATEGORY],
            },
            "versions": [
                {
                    "name": VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": columns,
                    "schema": {"openAPIV3Schema": root},
                }
            ],
        },
    }


def _column(name: str, path: str, type_: str = "string", priority: int = 0) -> Schema:
    column: Schema = {"name": name, "type": type_, "jsonPath": path}
    if priority:
        column["priority"] = priority
    return column


_READY = '.status.conditions[?(@.type=="Ready")].status'


def queue_crd() -> dict[str, Any]:
    return _crd(
        QUEUE_KIND,
        QUEUE_PLURAL,
        QUEUE_SINGULAR,
        QUEUE_SHORT_NAMES,
        queue_spec_schema(),
        queue_status_schema(),
        [
            _column("Queue", ".status.queueName"),
            _column("Paused", ".spec.paused", "boolean"),
            _column("Depth", ".status.depth", "integer"),
            _column("Active", ".status.active", "integer"),
            _column("Replicas", ".status.currentReplicas", "integer"),
            _column("Wanted", ".status.desiredReplicas", "integer"),
            _column("Ready", _READY),
            _column("Target", ".spec.autoscaling.targetRef.name", priority=1),
            _column("Age", ".metadata.creationTimestamp", "date"),
        ],
    )


def cron_crd() -> dict[str, Any]:
    return _crd(
        CRON_KIND,
        CRON_PLURAL,
        CRON_SINGULAR,
        CRON_SHORT_NAMES,
        cron_spec_schema(),
        cron_status_schema(),
        [
            _column("Schedule", ".spec.schedule"),
            _column("TimeZone", ".spec.timeZone"),
            _column("Type", ".spec.jobTemplate.type"),
            _column("Suspend", ".spec.suspend", "boolean"),
            _column("Last", ".status.lastFireTime", "date"),
            _column("Next", ".status.nextFireTime", "string", priority=1),
            _column("Ready", _READY),
            _column("Age", ".metadata.creationTimestamp", "date"),
        ],
    )


def all_crds() -> list[dict[str, Any]]:
    return [queue_crd(), cron_crd()]


HEADER = (
    "# Generated from operator/ojs_operator/crds.py by `make crds`: edit that module,\n"
    "# not this file (a test fails when the two differ).\n"
)


def file_name(crd: dict[str, Any]) -> str:
    return f"{crd['metadata']['name']}.yaml"


def render(crd: dict[str, Any]) -> str:
    """The committed YAML text of one CRD (stable: the same input gives the same bytes)."""
    import yaml  # only the generator needs PyYAML; the operator uses the dicts

    return HEADER + yaml.safe_dump(crd, sort_keys=False, width=100, allow_unicode=True)


def write(directory: Path) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for crd in all_crds():
        path = directory / file_name(crd)
        path.write_text(render(crd))
        written.append(path)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Write the Queue and CronJob CRDs as YAML.")
    parser.add_argument("directory", type=Path, help="e.g. charts/ojs-nats/crds")
    args = parser.parse_args(argv)
    for path in write(args.directory):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
