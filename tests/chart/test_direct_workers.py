"""What direct workers (`ojs-nats worker --direct`) need from the chart, and its example.

A direct worker runs the service layer itself, so it must read the gateways' server settings:
the chart renders them once, as a ConfigMap both take with envFrom, and the NATS NetworkPolicy
admits pods carrying the direct-worker label. The settings are checked against the code a
direct worker runs, so a setting that layer starts reading cannot be left out of the ConfigMap.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Any

import pytest

from ojs_nats import config
from ojs_nats.config import Settings
from tests.chart import helm, manifests
from tests.chart.test_render import KUBE_VERSIONS, readme_env_defaults
from tests.support import ROOT

GATEWAY = f"{helm.RELEASE}-gateway"
NATS = f"{helm.RELEASE}-nats"
SETTINGS = f"{helm.RELEASE}-server-settings"
IN_CHART_NATS = f"nats://{NATS}.{helm.NAMESPACE}.svc.cluster.local:4222"
DIRECT_EXAMPLE = helm.DEPLOY / "examples" / "worker-deployment-direct.yaml"
DIRECT_LABEL = {"ojs-nats.io/direct-worker": "true"}
#: Read by the gateway process alone (listener, reset route, shutdown, uvicorn, logging): in the
#: gateway's own env, never forced on workers. In README order, as the chart renders them.
GATEWAY_ONLY = ["OJS_HOST", "OJS_PORT", "OJS_ENABLE_TEST_RESET", "OJS_DRAIN_TIMEOUT_S",
                "OJS_SHUTDOWN_DELAY_S", "OJS_WORKERS", "OJS_LOG_LEVEL"]


def variables_read_by_direct_workers() -> set[str]:
    """The variable of every `Settings` field read by the code a direct worker runs: the
    service and storage layers and ojs_nats/direct.py."""
    package = ROOT / "ojs_nats"
    sources = [package / "direct.py", *(package / "service").rglob("*.py"),
               *(package / "storage").rglob("*.py")]
    read = {name for path in sources
            for name in re.findall(r"settings\.([a-z_]+)\b", path.read_text())}
    fields = {f.name for f in dataclasses.fields(Settings)}
    variable = {name: var for name, (var, _) in config._ENV_FIELDS.items()}
    variable["nats_urls"] = "NATS_URL"
    return {variable[name] for name in read & fields}


def server_settings(docs: list[manifests.Doc]) -> dict[str, str]:
    return dict(helm.one(docs, "ConfigMap", SETTINGS)["data"])


def gateway_container(docs: list[manifests.Doc]) -> dict[str, Any]:
    return helm.container(helm.one(docs, "Deployment", GATEWAY), "gateway")


def checksum(docs: list[manifests.Doc]) -> str:
    deployment = helm.one(docs, "Deployment", GATEWAY)
    return str(deployment["spec"]["template"]["metadata"]["annotations"]
               ["checksum/server-settings"])


def client_rule(docs: list[manifests.Doc]) -> dict[str, Any]:
    policy = helm.one(docs, "NetworkPolicy", NATS)
    (rule,) = [r for r in policy["spec"]["ingress"] if r["ports"][0]["port"] == "nats"]
    return rule


def direct_example() -> manifests.Doc:
    (doc,) = manifests.load_all(DIRECT_EXAMPLE.read_text())
    return doc


def test_server_settings_are_what_direct_workers_read_and_nothing_gateway_only() -> None:
    read = variables_read_by_direct_workers()
    # The scan found the settings that decide which streams a worker uses.
    assert {"NATS_URL", "OJS_NAMESPACE", "OJS_REPLICAS"} <= read
    data = server_settings(helm.render())
    assert set(data) == read
    assert not set(data) & set(GATEWAY_ONLY)
    # Between them, the ConfigMap and the gateway-only variables cover the README's table.
    assert set(data) | set(GATEWAY_ONLY) == set(readme_env_defaults()) - {"OJS_NATS_SERVER_BIN"}


@pytest.mark.parametrize(("values", "sets", "expected"), [
    (None, (), {"NATS_URL": IN_CHART_NATS, "OJS_REPLICAS": "3", "OJS_NAMESPACE": "ojs"}),
    (helm.VALUES["dev"], (), {"NATS_URL": IN_CHART_NATS, "OJS_REPLICAS": "1"}),
    (None, ("nats.config.cluster.replicas=5",), {"OJS_REPLICAS": "3"}),
    (None, ("nats.config.cluster.replicas=5", "gateway.config.replicas=5"),
     {"OJS_REPLICAS": "5"}),
    (None, ("nats.enabled=false", "gateway.config.natsUrl=nats://nats.infra:4222"),
     {"NATS_URL": "nats://nats.infra:4222", "OJS_REPLICAS": "1"}),
    (None, ("gateway.config.namespace=jobs", "gateway.config.finishedRetentionS=3600",
            "gateway.config.deadLetterMaxCount=0", "gateway.config.serviceName=billing"),
     {"OJS_NAMESPACE": "jobs", "OJS_FINISHED_RETENTION_S": "3600",
      "OJS_DEAD_LETTER_MAX_COUNT": "0", "OJS_SERVICE_NAME": "billing"}),
])
def test_server_settings_follow_the_values(values: Path | None, sets: tuple[str, ...],
                                           expected: dict[str, str]) -> None:
    docs = helm.render(values=values, sets=sets)
    data = server_settings(docs)
    assert {name: data[name] for name in expected} == expected
    # The gateway's stream replicas and the workers' are one value.
    assert helm.pod_env(docs, gateway_container(docs))["OJS_REPLICAS"] == data["OJS_REPLICAS"]
    Settings.from_env(data)  # values a worker's parser accepts


def test_gateway_takes_the_server_settings_from_the_configmap_only() -> None:
    docs = helm.render()
    gateway = gateway_container(docs)
    assert gateway["envFrom"] == [{"configMapRef": {"name": SETTINGS}}]
    # Its own entries are the gateway-only variables, literal values, none repeated.
    assert [e["name"] for e in gateway["env"]] == GATEWAY_ONLY
    assert list(helm.env_of(gateway)) == GATEWAY_ONLY
    assert not set(server_settings(docs)) & set(helm.env_of(gateway))


def test_a_server_settings_change_rolls_the_gateways() -> None:
    base = checksum(helm.render())
    assert re.fullmatch(r"[0-9a-f]{64}", base)
    for setting in ("gateway.config.namespace=jobs", "gateway.config.replicas=1",
                    "gateway.config.eventsMaxCount=5", "gateway.config.natsUrl=nats://x:4222"):
        assert checksum(helm.render(sets=(setting,))) != base, setting
    # Not a server setting: the checksum stays (a gateway-only variable rolls the pods itself).
    for other in ("gateway.replicas=4", "gateway.config.logLevel=debug"):
        assert checksum(helm.render(sets=(other,))) == base, other
    # podAnnotations are kept beside the checksum.
    docs = helm.render(sets=("gateway.podAnnotations.team=jobs",))
    annotations = helm.one(docs, "Deployment", GATEWAY)["spec"]["template"]["metadata"][
        "annotations"]
    assert annotations == {"checksum/server-settings": base, "team": "jobs"}


def test_nats_policy_admits_direct_workers_of_the_release_namespace() -> None:
    docs = helm.render(sets=("nats.networkPolicy.enabled=true",))
    policy = helm.one(docs, "NetworkPolicy", NATS)
    peers = client_rule(docs)["from"]
    # A podSelector alone: pods of the policy's (the release's) namespace.
    assert {"podSelector": {"matchLabels": DIRECT_LABEL}} in peers
    gateway_labels = helm.one(docs, "Deployment", GATEWAY)["spec"]["selector"]["matchLabels"]
    assert {"podSelector": {"matchLabels": gateway_labels}} in peers
    # Only the client port: routes and monitoring stay closed to workers.
    for rule in policy["spec"]["ingress"]:
        if rule["ports"][0]["port"] != "nats":
            assert {"podSelector": {"matchLabels": DIRECT_LABEL}} not in rule["from"]
    # The example's pods carry the label the policy admits.
    pod_labels = direct_example()["spec"]["template"]["metadata"]["labels"]
    assert DIRECT_LABEL.items() <= pod_labels.items()


def test_direct_workers_can_be_left_out_of_the_nats_policy() -> None:
    docs = helm.render(sets=("nats.networkPolicy.enabled=true",
                             "nats.networkPolicy.directWorkers=false"))
    peers = client_rule(docs)["from"]
    assert len(peers) == 1
    assert "ojs-nats.io/direct-worker" not in peers[0]["podSelector"]["matchLabels"]


def test_direct_worker_example_runs_with_the_gateways_settings() -> None:
    assert DIRECT_EXAMPLE in helm.EXAMPLES  # so every strict validation of the examples has it
    example = direct_example()
    for version in KUBE_VERSIONS:
        report = manifests.validate([example], version, strict=True)
        assert report.errors == []
        assert report.checked == ["Deployment/emails-worker-direct"]
    worker = helm.container(example, "worker")
    assert worker["args"][0] == "worker"
    assert "--direct" in worker["args"]
    # The chart's ConfigMap for the release the example names (ojs-nats), and no gateway URL.
    assert worker["envFrom"] == [{"configMapRef": {"name": SETTINGS}}]
    env = helm.env_of(worker)
    assert "OJS_URL" not in env
    assert not set(env) & variables_read_by_direct_workers()
    # Started beside the rendered chart, the worker parses the settings the gateway runs with.
    docs = helm.render()
    gateway = Settings.from_env(helm.pod_env(docs, gateway_container(docs)))
    direct = Settings.from_env(helm.pod_env(docs, worker))
    variable = {var: name for name, (var, _) in config._ENV_FIELDS.items()}
    variable["NATS_URL"] = "nats_urls"
    for var in sorted(variables_read_by_direct_workers()):
        assert getattr(direct, variable[var]) == getattr(gateway, variable[var]), var
    assert direct.nats_urls == (IN_CHART_NATS,)
