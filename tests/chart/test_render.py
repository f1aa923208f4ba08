"""`helm lint` and `helm template` with Helm 4 and Helm 3, and what the rendered objects say.

Every rendering is validated offline against the Kubernetes schemas in strict mode, CRDs and the
example resources in deploy/examples included; the gateway's environment is compared with the
README's table and with `Settings`, so chart and code cannot drift apart.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from ojs_nats import __version__
from ojs_nats.config import Settings
from ojs_nats.embedded import find_binary
from ojs_nats.storage.names import Names
from tests.chart import helm, manifests
from tests.support import ROOT

#: The oldest Kubernetes the chart supports (Chart.yaml kubeVersion) and the newest schemas.
KUBE_VERSIONS = ("1.27", "1.37")
VALUE_SETS = sorted(helm.VALUES)
#: Kinds whose schemas no offline package ships; checked structurally in this module instead.
NO_OFFLINE_SCHEMA = {("keda.sh/v1alpha1", "ScaledObject"),
                     ("monitoring.coreos.com/v1", "ServiceMonitor")}
EVERYTHING_ON = (
    "gateway.autoscaling.enabled=true", "gateway.serviceMonitor.enabled=true",
    "gateway.networkPolicy.enabled=true", "operator.networkPolicy.enabled=true",
    "nats.networkPolicy.enabled=true", "operator.keda=true",
    "keda.scaledObjects[0].name=emails", "keda.scaledObjects[0].deployment=emails-worker",
    "keda.scaledObjects[0].queue=emails.eu", "keda.scaledObjects[0].priorities={0,-5,7}",
)
GATEWAY = f"{helm.RELEASE}-gateway"
NATS = f"{helm.RELEASE}-nats"


def examples() -> list[manifests.Doc]:
    return [doc for path in helm.EXAMPLES for doc in manifests.load_all(path.read_text())]


def readme_env_defaults() -> dict[str, str]:
    """The README's table of gateway environment variables: name -> default."""
    text = (ROOT / "README.md").read_text()
    # Only the gateway's table: the worker's variables have a table of their own further on.
    text = text.split("### Environment variables", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| `([A-Z_]+)` \| `?([^|`]*?)`? \|", text, flags=re.MULTILINE)
    assert rows, "README.md lost its environment variable table"
    return dict(rows)


@pytest.mark.parametrize("values", VALUE_SETS)
@pytest.mark.parametrize("binary", helm.HELMS)
def test_lint_and_template_pass_and_validate_strictly(binary: str, values: str) -> None:
    path = helm.VALUES[values]
    lint = helm.run(binary, "lint", "--strict", str(helm.CHART),
                    *(["--values", str(path)] if path else []))
    assert lint.returncode == 0, lint.stdout + lint.stderr
    docs = helm.render(binary, path) + examples()
    kinds = {d["kind"] for d in docs}
    assert {"CustomResourceDefinition", "Deployment", "StatefulSet", "Queue", "CronJob"} <= kinds
    for version in KUBE_VERSIONS:
        report = manifests.validate(docs, version, strict=True)
        assert report.errors == [], f"k8s {version}: " + "\n".join(report.errors)
        assert report.unknown == []


@pytest.mark.parametrize("binary", helm.HELMS)
def test_every_optional_object_renders_and_validates(binary: str) -> None:
    docs = helm.render(binary, sets=EVERYTHING_ON)
    kinds = {(d["apiVersion"], d["kind"]) for d in docs}
    assert ("autoscaling/v2", "HorizontalPodAutoscaler") in kinds
    assert kinds >= NO_OFFLINE_SCHEMA
    assert sum(d["kind"] == "NetworkPolicy" for d in docs) == 3
    report = manifests.validate(docs, KUBE_VERSIONS[-1], strict=True)
    assert report.errors == []
    assert set(report.unknown) == NO_OFFLINE_SCHEMA
    # The HPA owns the replica count: the Deployment must not fight it.
    assert "replicas" not in helm.one(docs, "Deployment", GATEWAY)["spec"]


def test_keda_scaled_object_reads_the_gateways_own_consumers() -> None:
    docs = helm.render(sets=EVERYTHING_ON)
    scaled = helm.one(docs, "ScaledObject", "emails")
    assert scaled["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment",
                                                "name": "emails-worker"}
    names = Names("ojs")
    triggers = [t["metadata"] for t in scaled["spec"]["triggers"]]
    assert [t["consumer"] for t in triggers] == [
        names.ready_consumer("emails.eu", p) for p in (0, -5, 7)]
    assert {t["stream"] for t in triggers} == {names.ready_stream}
    headless = helm.one(docs, "Service", f"{NATS}-headless")
    host, port = triggers[0]["natsServerMonitoringEndpoint"].rsplit(":", 1)
    assert host.startswith(f"{headless['metadata']['name']}.{helm.NAMESPACE}.svc.")
    assert int(port) in {p["port"] for p in headless["spec"]["ports"]}


def test_service_monitor_scrapes_the_gateway_port() -> None:
    docs = helm.render(sets=EVERYTHING_ON)
    monitor = helm.one(docs, "ServiceMonitor", GATEWAY)
    service = helm.one(docs, "Service", GATEWAY)
    selector = monitor["spec"]["selector"]["matchLabels"]
    assert selector.items() <= service["metadata"]["labels"].items()
    assert monitor["spec"]["endpoints"][0]["port"] in {p["name"] for p in service["spec"]["ports"]}


def test_gateway_env_is_exactly_the_readme_variables_with_their_defaults() -> None:
    readme = readme_env_defaults()
    docs = helm.render()
    # Its env entries plus the server-settings ConfigMap it takes with envFrom.
    env = helm.pod_env(docs, helm.container(helm.one(docs, "Deployment", GATEWAY), "gateway"))
    # OJS_NATS_SERVER_BIN only matters to `ojs-nats dev` and the tests.
    assert set(env) == set(readme) - {"OJS_NATS_SERVER_BIN"}
    expected = {name: readme[name] for name in env}
    # Differences a cluster needs, each documented in the README's table.
    expected |= {"NATS_URL": f"nats://{NATS}.{helm.NAMESPACE}.svc.cluster.local:4222",
                 "OJS_HOST": "0.0.0.0", "OJS_REPLICAS": "3",
                 # one process per pod: a pod's CPU share, not the node's cores; scale by pods
                 "OJS_WORKERS": "1"}
    assert env == expected
    # And the gateway's own parser agrees: every rendered value is one it accepts, and the
    # untouched ones are its defaults.
    settings = Settings.from_env(env)
    defaults = Settings()
    for field in ("port", "namespace", "max_body_bytes", "default_visibility_timeout_ms",
                  "default_timeout_ms", "finished_retention_s", "dead_letter_retention_s",
                  "dead_letter_max_count",
                  "events_max_age_s", "events_max_count", "enable_test_reset",
                  "drain_timeout_s", "log_level", "service_name"):
        assert getattr(settings, field) == getattr(defaults, field), field


@pytest.mark.parametrize(("values", "sets", "nats_nodes", "stream_replicas"), [
    (None, (), 3, "3"),
    (helm.VALUES["ha"], (), 3, "3"),
    (helm.VALUES["dev"], (), 1, "1"),
    (None, ("nats.config.cluster.replicas=5", "gateway.config.replicas=5"), 5, "5"),
    (None, ("nats.enabled=false", "gateway.config.natsUrl=nats://nats.infra:4222"), 0, "1"),
])
def test_streams_are_replicated_three_times_on_a_three_node_cluster(
        values: Path | None, sets: tuple[str, ...], nats_nodes: int, stream_replicas: str) -> None:
    docs = helm.render(values=values, sets=sets)
    env = helm.pod_env(docs, helm.container(helm.one(docs, "Deployment", GATEWAY), "gateway"))
    assert env["OJS_REPLICAS"] == stream_replicas
    statefulsets = [d for d in docs if d["kind"] == "StatefulSet"]
    assert [s["spec"]["replicas"] for s in statefulsets] == ([nats_nodes] if nats_nodes else [])


@pytest.mark.parametrize(("sets", "message"), [
    (("gateway.config.replicas=5",), "exceeds the 3 NATS nodes"),
    (("nats.config.cluster.replicas=2",), "minimum"),
    (("nats.config.jetstream.enabled=false",), "jetstream"),
    (("nats.enabled=false",), "gateway.config.natsUrl is required"),
    (("gateway.config.namespace=Bad_Name",), "namespace"),
    (("gateway.config.maxBodyBytes=20000000",), "maxBodyBytes"),
    (("gateway.bogus=1",), "bogus"),
])
def test_bad_values_are_refused_with_a_reason(sets: tuple[str, ...], message: str) -> None:
    assert message in helm.render_error(sets=sets)


def test_gateway_shutdown_budget_matches_the_drain_timeout() -> None:
    cases = (((), 20, 5, 0), (("gateway.config.drainTimeoutS=45", "gateway.preStopSleepSeconds=8",
                               "gateway.config.shutdownDelayS=3"), 45, 8, 3))
    for sets, drain, sleep, delay in cases:
        deployment = helm.one(helm.render(sets=sets), "Deployment", GATEWAY)
        pod = deployment["spec"]["template"]["spec"]
        gateway = helm.container(deployment, "gateway")
        assert helm.env_of(gateway)["OJS_DRAIN_TIMEOUT_S"] == str(drain)
        assert helm.env_of(gateway)["OJS_SHUTDOWN_DELAY_S"] == str(delay)
        assert gateway["lifecycle"]["preStop"]["exec"]["command"] == ["sleep", str(sleep)]
        # preStop sleep, the shutdown delay, the drain, then 10 s to close timers and NATS.
        assert pod["terminationGracePeriodSeconds"] == sleep + delay + drain + 10


def test_gateway_probes_use_the_health_endpoints_on_the_served_port() -> None:
    deployment = helm.one(helm.render(), "Deployment", GATEWAY)
    gateway = helm.container(deployment, "gateway")
    assert gateway["readinessProbe"]["httpGet"] == {"path": "/ready", "port": "http"}
    assert gateway["livenessProbe"]["httpGet"] == {"path": "/health", "port": "http"}
    port = next(p for p in gateway["ports"] if p["name"] == "http")["containerPort"]
    assert str(port) == helm.env_of(gateway)["OJS_PORT"]
    affinity = deployment["spec"]["template"]["spec"]["affinity"]["podAntiAffinity"]
    assert "preferredDuringSchedulingIgnoredDuringExecution" in affinity
    ha = helm.one(helm.render(values=helm.VALUES["ha"]), "Deployment", GATEWAY)
    assert "requiredDuringSchedulingIgnoredDuringExecution" in \
        ha["spec"]["template"]["spec"]["affinity"]["podAntiAffinity"]


@pytest.mark.parametrize("values", VALUE_SETS)
def test_every_pod_runs_non_root_read_only_without_privilege_escalation(values: str) -> None:
    docs = helm.render(values=helm.VALUES[values])
    for workload in (d for d in docs if d["kind"] in ("Deployment", "StatefulSet")):
        pod = workload["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        for c in pod["containers"]:
            context = c["securityContext"]
            assert context["allowPrivilegeEscalation"] is False, c["name"]
            assert context["capabilities"]["drop"] == ["ALL"], c["name"]
            assert c["resources"]["requests"]["cpu"]
            assert c["resources"]["requests"]["memory"]
            # Only the dev values relax this, for Tilt's live update (see values-dev.yaml).
            assert context["readOnlyRootFilesystem"] is (values != "dev" or c["name"] == "nats")


def test_nats_statefulset_follows_the_official_chart_layout() -> None:
    docs = helm.render()
    sts = helm.one(docs, "StatefulSet", NATS)
    nats = helm.container(sts, "nats")
    assert {p["name"]: p["containerPort"] for p in nats["ports"]} == {
        "nats": 4222, "cluster": 6222, "monitor": 8222}
    assert nats["readinessProbe"]["httpGet"]["path"].startswith("/healthz")
    assert nats["livenessProbe"]["httpGet"]["path"].startswith("/healthz")
    assert nats["lifecycle"]["preStop"]["exec"]["command"] == [
        "nats-server", "-sl=ldm=/var/run/nats/nats.pid"]
    claim = sts["spec"]["volumeClaimTemplates"][0]
    mount = next(m for m in nats["volumeMounts"] if m["name"] == claim["metadata"]["name"])
    assert mount["mountPath"] == "/data"
    assert sts["spec"]["serviceName"] == f"{NATS}-headless"
    headless = helm.one(docs, "Service", f"{NATS}-headless")
    assert headless["spec"]["clusterIP"] == "None"
    assert helm.one(docs, "PodDisruptionBudget", NATS)["spec"]["maxUnavailable"] == 1
    # Lame duck must finish before the kill.
    assert sts["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] > 30 + 10
    conf = helm.nats_conf(docs)
    assert '"sync_interval": "always"' in conf
    assert '"server_name": $POD_NAME' in conf
    assert '"lame_duck_duration": "30s"' in conf


@pytest.mark.parametrize("body", [1_048_576, 4_000_000])
def test_nats_max_payload_follows_the_gateway_body_limit(body: int) -> None:
    docs = helm.render(sets=(f"gateway.config.maxBodyBytes={body}",))
    conf = helm.nats_conf(docs)
    # A record holds up to 4 bodies (the job bucket's max_msg_size) plus headers.
    assert f'"max_payload": {4 * body + 65536},' in conf
    env = helm.pod_env(docs, helm.container(helm.one(docs, "Deployment", GATEWAY), "gateway"))
    assert env["OJS_MAX_BODY_BYTES"] == str(body)


def test_chart_versions_follow_the_code() -> None:
    chart = manifests.load_all((helm.CHART / "Chart.yaml").read_text())[0]
    assert chart["appVersion"] == __version__
    values = manifests.load_all((helm.CHART / "values.yaml").read_text())[0]
    # The NATS image is the server version the tests run the rendered config against.
    import subprocess
    version = subprocess.run([find_binary(), "--version"], capture_output=True,
                             text=True).stdout.strip().rsplit("v", 1)[-1]
    assert values["nats"]["container"]["image"]["tag"].startswith(version + "-")


def test_operator_runs_one_standalone_instance_with_least_privilege() -> None:
    docs = helm.render()
    deployment = helm.one(docs, "Deployment", f"{helm.RELEASE}-operator")
    assert deployment["spec"]["replicas"] == 1
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}
    operator = helm.container(deployment, "operator")
    assert operator["command"] == ["ojs-nats-operator"]
    assert "--standalone" in operator["args"]
    env = helm.env_of(operator)
    assert env["OJS_GATEWAY_URL"] == f"http://{GATEWAY}.{helm.NAMESPACE}.svc.cluster.local:8080"
    role = helm.one(docs, "ClusterRole")
    for rule in role["rules"]:
        # Read-mostly: nothing may delete, and only scale/status/own objects may be written.
        assert "delete" not in rule["verbs"]
        assert "*" not in rule["verbs"]
        assert "*" not in rule["resources"]
        assert "secrets" not in rule["resources"]
    binding = helm.one(docs, "ClusterRoleBinding")
    sa = helm.one(docs, "ServiceAccount", f"{helm.RELEASE}-operator")
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": sa["metadata"]["name"],
                                    "namespace": helm.NAMESPACE}]
    # Only the operator talks to the Kubernetes API.
    for name in (GATEWAY, NATS):
        workload = next(d for d in docs if d["metadata"]["name"] == name
                        and d["kind"] in ("Deployment", "StatefulSet"))
        assert workload["spec"]["template"]["spec"]["automountServiceAccountToken"] is False


def test_notes_name_the_distinct_cronjob_plural() -> None:
    notes = (helm.CHART / "templates" / "NOTES.txt").read_text()
    assert "ojscronjobs" in notes
    assert "batch/v1" in notes
