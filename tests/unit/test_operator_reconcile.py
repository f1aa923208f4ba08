"""The operator's desired state (pure): what a Queue or CronJob asks of the gateway, drift,
conditions, name ownership and the KEDA ScaledObject. The gateway's own parsers are the
reference: what the operator sends must be accepted, and what the gateway then reports must
read as "in sync" (otherwise every resync would write again).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from ojs_operator import crds, reconcile

from ojs_nats.model import envelope
from ojs_nats.model import queue_config as qc
from ojs_nats.storage.names import Names

EXAMPLES = Path(__file__).resolve().parents[2] / "deploy" / "examples"


def _example(kind: str) -> dict[str, Any]:
    for path in sorted(EXAMPLES.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc and doc.get("kind") == kind and doc["apiVersion"] == crds.API_VERSION:
                return doc
    raise AssertionError(kind)


def _as_gateway_reports(config: dict[str, Any]) -> dict[str, Any]:
    """What GET /queues/{name}/config answers after a PUT of `config` to a new queue."""
    update = qc.parse_update(config)
    stored = {k: v for k, v in qc.merged(None, update).items() if k != "paused"}
    return {**qc.to_wire(stored), "paused": bool(update.get("paused"))}


SPECS = [
    _example("Queue")["spec"],
    yaml.safe_load((EXAMPLES / "scaling-keda.yaml").read_text())["spec"],
    {},
    {"paused": True, "rateLimit": {"window": {"limit": 10, "period": "PT60S"}}},
    {"rateLimit": {"throttle": {"limit": 5, "period": "PT1S"}, "concurrency": 0}},
    {"backpressure": {"maxDepth": 10, "strategy": "block", "warningThreshold": 1}},
    {"retry": {"initialInterval": "PT90S", "maxInterval": "PT1H", "nonRetryableErrors": ["x"]}},
    {"retention": {"completed": "P1D", "discarded": "PT36H"}, "deadLetter": {}},
    {"visibilityTimeoutSeconds": 30, "defaultTimeoutSeconds": 600},
]


@pytest.mark.parametrize("spec", SPECS)
def test_queue_config_is_accepted_by_the_gateway_and_then_reads_as_in_sync(spec):
    desired = reconcile.queue_config(spec)
    assert set(desired) == set(reconcile.QUEUE_SETTINGS)
    assert reconcile.config_drift(desired, _as_gateway_reports(desired)) == {}


def test_a_queue_never_configured_gets_the_whole_document():
    desired = reconcile.queue_config({"paused": True})
    assert reconcile.config_drift(desired, None) == desired


def test_drift_names_only_what_differs_such_as_a_queue_resumed_by_hand():
    desired = reconcile.queue_config({"paused": True, "rateLimit": {"concurrency": 4}})
    reported = {**_as_gateway_reports(desired), "paused": False}
    assert reconcile.config_drift(desired, reported) == {"paused": True}


def test_settings_left_out_of_the_spec_are_reset_and_zero_depth_means_unbounded():
    desired = reconcile.queue_config({"backpressure": {"maxDepth": 0, "strategy": "block"}})
    assert desired["backpressure"] is None
    assert desired["concurrency"] is None
    assert desired["default_retry"] is None
    reported = _as_gateway_reports(reconcile.queue_config({"rateLimit": {"concurrency": 3}}))
    assert reconcile.config_drift(desired, reported) == {"concurrency": None}


def test_crd_defaults_apply_where_the_parent_object_is_given():
    spec = reconcile.queue_spec(
        {"retry": {"maxAttempts": 9}, "autoscaling": {"targetRef": {"name": "w"}}}
    )
    assert spec["paused"] is False
    assert spec["retry"] == {
        "maxAttempts": 9,
        "initialInterval": "PT1S",
        "backoffCoefficient": 2.0,
        "maxInterval": "PT5M",
        "jitter": True,
        "onExhaustion": "discard",
    }
    assert spec["autoscaling"]["minReplicas"] == 1
    assert spec["autoscaling"]["mode"] == "operator"
    assert spec["autoscaling"]["targetRef"]["kind"] == "Deployment"
    assert "backpressure" not in spec
    assert "deadLetter" not in spec


def test_queue_name_defaults_to_the_resource_name():
    assert reconcile.queue_name("emails", {}) == "emails"
    assert reconcile.queue_name("emails", {"queueName": "mail.out"}) == "mail.out"


def test_cron_registration_maps_the_example_to_the_gateways_wire_names():
    doc = _example("CronJob")
    body = reconcile.cron_registration(doc["metadata"]["name"], doc["spec"])
    assert body["name"] == "daily-digest"
    assert (body["expression"], body["timezone"]) == ("0 7 * * *", "Europe/Paris")
    assert (body["overlap_policy"], body["enabled"]) == ("skip", True)
    job = body["job_template"]
    assert job["options"] == {
        "queue": "emails",
        "priority": 10,
        "timeout_ms": 600000,
        "tags": ["digest"],
    }
    envelope.parse_submission(job, 0)  # the gateway validates the template as a job


def test_cron_drift_toggles_for_suspend_and_registers_for_anything_else():
    spec = {"schedule": "@hourly", "jobTemplate": {"type": "a.b"}}
    desired = reconcile.cron_registration("c", spec)
    reported = {**desired, "next_run_at": "2026-01-01T00:00:00Z", "run_count": 4}
    assert reconcile.cron_drift(desired, None) == "register"
    assert reconcile.cron_drift(desired, reported) == "none"
    assert reconcile.cron_drift({**desired, "enabled": False}, reported) == "toggle"
    assert reconcile.cron_drift({**desired, "expression": "@daily"}, reported) == "register"
    other_args = {**desired, "job_template": {**desired["job_template"], "args": [1]}}
    assert reconcile.cron_drift(other_args, reported) == "register"


def test_conditions_keep_their_transition_time_until_the_status_changes():
    first = reconcile.conditions(None, True, "Reconciled", "ok", 1000.0, 1)
    assert [(c["type"], c["status"]) for c in first] == [("Ready", "True"), ("Degraded", "False")]
    same = reconcile.conditions(first, True, "Reconciled", "ok", 2000.0, 2)
    assert same[0]["lastTransitionTime"] == first[0]["lastTransitionTime"]
    assert same[0]["observedGeneration"] == 2
    flipped = reconcile.conditions(same, False, "GatewayUnavailable", "down", 3000.0, 2)
    assert flipped[0]["lastTransitionTime"] == reconcile.rfc3339(3000.0) == "1970-01-01T00:50:00Z"
    assert flipped[1]["status"] == "True"
    assert flipped[1]["reason"] == "GatewayUnavailable"


def test_status_changes_leave_out_what_is_already_there():
    assert reconcile.status_changes({"depth": 3, "active": 1}, {"depth": 3, "active": 2}) == {
        "active": 2
    }


def test_the_oldest_claim_owns_a_name_ties_broken_by_namespace_and_name():
    claims = [
        ("2026-01-02T00:00:00Z", "b", "q"),
        ("2026-01-01T00:00:00Z", "z", "q"),
        ("2026-01-01T00:00:00Z", "a", "q"),
    ]
    assert reconcile.owner(claims) == ("a", "q")
    assert reconcile.owner([]) is None


@pytest.mark.parametrize(("queue", "priority"), [("emails", 0), ("mail.out", 10), ("q", -5)])
def test_keda_stream_and_consumer_names_are_the_gateways(queue, priority):
    names = Names("ojs")
    assert reconcile.ready_stream("ojs") == names.ready_stream
    assert reconcile.ready_consumer(queue, priority) == names.ready_consumer(queue, priority)


def test_scaled_object_translates_activation_and_cooldowns():
    autoscaling = reconcile.queue_spec(
        {"autoscaling": {"targetRef": {"name": "w"}, "activationThreshold": 1, "mode": "keda"}}
    )["autoscaling"]
    body = reconcile.scaled_object(
        name="q",
        namespace="ns",
        owner_uid="u",
        queue="q",
        autoscaling=autoscaling,
        ojs_namespace="ojs",
        monitor_url="https://nats:8222",
    )
    trigger = body["spec"]["triggers"][0]["metadata"]
    assert trigger["natsServerMonitoringEndpoint"] == "nats:8222"
    assert trigger["useHttps"] == "true"
    assert trigger["activationLagThreshold"] == "0"  # KEDA: active when lag > 0, ours: >= 1
    assert body["spec"]["cooldownPeriod"] == 300
    assert body["metadata"]["ownerReferences"][0]["kind"] == "Queue"


def test_backoff_doubles_up_to_a_minute():
    assert [reconcile.backoff_s(n) for n in range(8)] == [1, 2, 4, 8, 16, 32, 60, 60]
    assert reconcile.backoff_s(10_000) == 60


def test_an_object_with_added_defaults_still_contains_what_we_asked_for():
    wanted = {"spec": {"triggers": [{"type": "t", "metadata": {"a": "1"}}], "min": 0}}
    defaulted = {
        "spec": {"triggers": [{"type": "t", "metadata": {"a": "1", "b": "x"}}], "min": 0, "idle": 0}
    }
    assert reconcile.contains(defaulted, wanted)
    assert not reconcile.contains({"spec": {"triggers": [], "min": 0}}, wanted)
    assert not reconcile.contains({"spec": {**defaulted["spec"], "min": 1}}, wanted)
