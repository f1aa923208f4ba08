"""The chart's wiring, run: its NATS configuration as a real 3-node JetStream cluster and its
gateway container as a real process, passing the official Level 0 suite on that cluster.

Only hosts, ports and file paths are rewritten (to 127.0.0.1, free ports and a temp dir); the
rest (server names from POD_NAME, routes, sync_interval, max_payload, the gateway's env and
args, its probes and shutdown budget) is used exactly as rendered.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from ojs_nats.embedded import free_port
from tests.chart import helm, local

pytestmark = [pytest.mark.nats, pytest.mark.cluster, pytest.mark.slow]

OFFICIAL = Path(__file__).resolve().parent.parent / "conformance" / "official"
NATS = f"{helm.RELEASE}-nats"
GATEWAY = f"{helm.RELEASE}-gateway"
LEVEL0_TESTS = 65


@dataclass
class Cluster:
    nodes: list[local.NatsNode]
    ports: list[local.NodePorts]
    client_urls: list[str]


@pytest.fixture(scope="module")
def rendered() -> list[dict[str, Any]]:
    # The conformance runner needs the reset endpoint: a chart value, off by default.
    return helm.render(sets=("gateway.config.enableTestReset=true",))


def test_rendered_nats_config_passes_nats_server_check(rendered: list[dict[str, Any]],
                                                       tmp_path: Path) -> None:
    path = tmp_path / "nats.conf"
    path.write_text(helm.nats_conf(rendered))
    result = local.check_config(path, f"{NATS}-0")
    assert result.returncode == 0, result.stderr
    assert "is valid" in result.stderr


@pytest.fixture(scope="module")
def cluster(rendered: list[dict[str, Any]],
            tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    conf = local.parse_nats_conf(helm.nats_conf(rendered))
    replicas = helm.one(rendered, "StatefulSet", NATS)["spec"]["replicas"]
    assert replicas == 3
    data = tmp_path_factory.mktemp("nats-cluster")
    ports = [local.NodePorts() for _ in range(replicas)]
    nodes = []
    for i in range(replicas):
        node_conf, changed = local.rewrite_nats(conf, i, ports, data)
        assert changed == ["listen", "http", "jetstream.store_dir", "pid_file",
                           "cluster.listen", "cluster.routes"]
        path = data / f"node{i}.conf"
        path.write_text(local.dump_nats_conf(node_conf))
        checked = local.check_config(path, f"{NATS}-{i}")
        assert checked.returncode == 0, checked.stderr
        nodes.append(local.NatsNode(path, f"{NATS}-{i}", data / f"node{i}.log"))
    try:
        for node in nodes:  # podManagementPolicy: Parallel
            node.start()
        for node in nodes:
            node.wait_ready()
        yield Cluster(nodes, ports, [f"nats://127.0.0.1:{p.client}" for p in ports])
    finally:
        for node in nodes:
            node.stop()


def _probe_url(port: int, probe: dict[str, Any]) -> str:
    return f"http://127.0.0.1:{port}{probe['httpGet']['path']}"


def test_nodes_form_one_jetstream_cluster_that_the_rendered_probes_accept(
        rendered: list[dict[str, Any]], cluster: Cluster) -> None:
    nats = helm.container(helm.one(rendered, "StatefulSet", NATS), "nats")
    for ports in cluster.ports:
        for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
            local.wait_http(_probe_url(ports.monitor, nats[probe]), timeout=60)
    names = set()
    for ports in cluster.ports:
        jsz = httpx.get(f"http://127.0.0.1:{ports.monitor}/jsz", timeout=5).json()
        meta = jsz["meta_cluster"]
        assert meta["cluster_size"] == 3, meta
        assert meta["leader"], meta
        varz = httpx.get(f"http://127.0.0.1:{ports.monitor}/varz", timeout=5).json()
        names.add(varz["server_name"])
        assert varz["max_payload"] == 4 * 1_048_576 + 65536
        assert varz["jetstream"]["config"]["sync_always"] is True
    # server_name comes from POD_NAME, as in the StatefulSet.
    assert names == {f"{NATS}-{i}" for i in range(3)}


class Gateway:
    """The rendered gateway container as a local process."""

    def __init__(self, rendered: list[dict[str, Any]], cluster: Cluster, log: Path) -> None:
        deployment = helm.one(rendered, "Deployment", GATEWAY)
        self.pod = deployment["spec"]["template"]["spec"]
        self.container = helm.container(deployment, "gateway")
        # The env entries and the server-settings ConfigMap, as the kubelet merges them.
        self.env = helm.pod_env(rendered, self.container)
        service = urlsplit(self.env["NATS_URL"])
        # NATS_URL names the client Service; locally the Service is its three pods.
        assert service.hostname == f"{NATS}.{helm.NAMESPACE}.svc.cluster.local"
        self.port = free_port()
        self.local_env = local.local_env(self.env, {
            "NATS_URL": ",".join(cluster.client_urls),
            "OJS_HOST": "127.0.0.1",
            "OJS_PORT": str(self.port),
        })
        self.log = log
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(local.local_command(self.container),
                                            env=self.local_env, stdout=log, stderr=log)
        # Ready as the kubelet sees it: the rendered probes, on the rendered port.
        for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
            local.wait_http(self.url + self.container[probe]["httpGet"]["path"], 60,
                            self.process, self.log)

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()


@pytest.fixture(scope="module")
def gateway(rendered: list[dict[str, Any]], cluster: Cluster,
            tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    gw = Gateway(rendered, cluster, tmp_path_factory.mktemp("gateway") / "gateway.log")
    gw.start()
    yield gw
    gw.kill()


def test_gateway_started_from_the_rendered_container_provisions_r3_streams(
        gateway: Gateway, cluster: Cluster) -> None:
    assert local.local_command(gateway.container)[-1:] == ["serve"]
    jsz = httpx.get(f"http://127.0.0.1:{cluster.ports[0].monitor}/jsz",
                    params={"accounts": "true", "streams": "true", "config": "true"},
                    timeout=5).json()
    prefix = gateway.env["OJS_NAMESPACE"].upper() + "_"
    streams = {s["name"]: s for a in jsz["account_details"] for s in a.get("stream_detail", [])}
    ours = {name: s for name, s in streams.items() if prefix in name}
    assert len(ours) >= 8, sorted(streams)
    for name, stream in ours.items():
        assert stream["config"]["num_replicas"] == 3, name
        assert len(stream["cluster"].get("replicas", [])) == 2, name  # a leader + 2 followers


@pytest.mark.conformance
@pytest.mark.timeout(900)
def test_official_level_0_suite_passes_on_the_rendered_cluster(gateway: Gateway) -> None:
    result = subprocess.run(
        [sys.executable, str(OFFICIAL / "ojs_conformance.py"), "--url", gateway.url,
         "--suites", str(OFFICIAL / "suites" / "level-0-core"),
         "--reset-url", gateway.url + "/ojs/v1/admin/reset"],
        capture_output=True, text=True, timeout=880)
    final = result.stdout.strip().splitlines()[-1] if result.stdout.strip() else "(no output)"
    print(f"\nlevel 0 on the chart's 3-node cluster: {final}")
    assert final == f"{LEVEL0_TESTS} passed, 0 failed", result.stdout[-6000:]


def test_a_job_at_the_body_limit_fits_through_nats(gateway: Gateway) -> None:
    limit = int(gateway.env["OJS_MAX_BODY_BYTES"])
    filler = "x" * (limit - 200)
    pushed = httpx.post(gateway.url + "/ojs/v1/jobs", timeout=30, json={
        "type": "chart.big", "queue": "chart-big", "args": [filler]})
    assert pushed.status_code == 201, pushed.text
    job_id = pushed.json()["job"]["id"]
    fetched = httpx.post(gateway.url + "/ojs/v1/workers/fetch", timeout=30, json={
        "queues": ["chart-big"], "worker_id": "chart"}).json()
    assert [j["id"] for j in fetched["jobs"]] == [job_id]
    # The record now holds a full body of args and a full body of result.
    acked = httpx.post(gateway.url + "/ojs/v1/workers/ack", timeout=30, json={
        "job_id": job_id, "result": {"echo": filler}})
    assert acked.status_code == 200, acked.text
    info = httpx.get(f"{gateway.url}/ojs/v1/jobs/{job_id}", timeout=30).json()
    assert info["job"]["state"] == "completed"
    too_big = httpx.post(gateway.url + "/ojs/v1/jobs", timeout=30, json={
        "type": "chart.big", "args": ["x" * limit]})
    assert too_big.status_code == 413


def test_writes_survive_the_loss_of_one_nats_node(gateway: Gateway, cluster: Cluster) -> None:
    cluster.nodes[2].kill()
    deadline = time.monotonic() + 45
    status = None
    while time.monotonic() < deadline:
        try:
            status = httpx.post(gateway.url + "/ojs/v1/jobs", timeout=10, json={
                "type": "chart.after_loss", "args": []}).status_code
        except httpx.HTTPError:
            status = None
        if status == 201:
            break
        time.sleep(0.5)
    assert status == 201


def test_sigterm_drains_within_the_rendered_grace_period(gateway: Gateway) -> None:
    assert gateway.process is not None
    grace = gateway.pod["terminationGracePeriodSeconds"]
    sleep = int(gateway.container["lifecycle"]["preStop"]["exec"]["command"][1])
    # The kubelet runs the preStop sleep first, then sends SIGTERM: what is left is the budget.
    started = time.monotonic()
    gateway.process.send_signal(signal.SIGTERM)
    code = gateway.process.wait(grace - sleep)
    assert time.monotonic() - started < grace - sleep
    log = gateway.log.read_text()
    # uvicorn re-raises the SIGTERM it handled once shutdown is complete, so the exit status
    # is the signal's (143 in a container) after a graceful stop, or 0.
    assert code in (0, -signal.SIGTERM), log[-3000:]
    assert "Application shutdown complete." in log
