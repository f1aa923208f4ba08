"""autoscaling.mode keda: the operator emits a KEDA ScaledObject instead of scaling itself.

KEDA cannot run here, so the test checks what KEDA would act on: the ScaledObject's fields,
and that its triggers name a stream and consumers that exist on the real nats-server, whose
monitoring endpoint reports (num_pending + num_ack_pending, KEDA's lag) the queue's waiting
jobs. The ScaledObject follows the mode and goes with the Queue (kmock collects no garbage,
so the finalizer's explicit delete is what is checked).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from ojs_nats.embedded import NatsServer, free_port
from tests.operator import cluster
from tests.operator.cluster import (
    DEPLOYMENTS,
    MERGE,
    NS,
    QUEUES,
    SCALED_OBJECTS,
    current,
    eventually,
    url_of,
)
from tests.support import GatewayProcess, namespace


@pytest.fixture
def monitored_nats(tmp_path: Path) -> Iterator[NatsServer]:
    """A nats-server of its own, with the monitoring port KEDA reads."""
    server = NatsServer(tmp_path / "nats", monitor_port=free_port(), name="keda-test")
    server.start()
    yield server
    server.stop()


@pytest.fixture
def keda_gateway(monitored_nats: NatsServer, tmp_path: Path) -> Iterator[GatewayProcess]:
    gateway = GatewayProcess(monitored_nats.url, namespace(), log_dir=tmp_path).start()
    yield gateway
    gateway.kill()


def _lag(jsz: dict, stream: str, consumer: str) -> int | None:
    """KEDA's nats-jetstream lag of one consumer, from /jsz?consumers=true."""
    for account in jsz.get("account_details", []):
        for detail in account.get("stream_detail", []):
            if detail["name"] != stream:
                continue
            for item in detail.get("consumer_detail", []):
                if item["name"] == consumer:
                    return int(item["num_pending"]) + int(item["num_ack_pending"])
    return None


async def test_keda_mode_emits_a_scaled_object_whose_triggers_see_the_queue_depth(
    api_server,
    api: httpx.AsyncClient,
    monitored_nats: NatsServer,
    keda_gateway: GatewayProcess,
    operator,
) -> None:
    queue, name = "search.index", "search-index"
    api_server.objects[DEPLOYMENTS, NS, "indexer"] = cluster.deployment("indexer", replicas=2)
    autoscaling = {
        "mode": "keda",
        "targetRef": {"name": "indexer"},
        "minReplicas": 0,
        "maxReplicas": 6,
        "activationThreshold": 3,
        "targetWaitingJobsPerReplica": 50,
        "scaleUpCooldownSeconds": 30,
        "scaleDownCooldownSeconds": 120,
        "pollingIntervalSeconds": 1,
        "priorities": [0, 10],
    }
    monitor = f"http://127.0.0.1:{monitored_nats.monitor_port}"
    spec = {"queueName": queue, "autoscaling": autoscaling}
    obj = lambda: current(api_server, QUEUES, name)  # noqa: E731
    scaled = lambda: current(api_server, SCALED_OBJECTS, name)  # noqa: E731
    env = {"OJS_NATS_MONITOR_URL": monitor, "OJS_NAMESPACE": keda_gateway.namespace}
    async with (
        operator(keda_gateway.url, **env),
        httpx.AsyncClient(base_url=keda_gateway.url + "/ojs/v1") as ojs,
        httpx.AsyncClient(base_url=monitor) as nats_monitor,
    ):
        assert (await api.post(url_of(QUEUES, NS), json=cluster.queue(name, spec))).is_success
        await eventually(scaled)
        body = scaled()
        assert body["metadata"]["ownerReferences"][0]["uid"] == obj()["metadata"]["uid"]
        so = body["spec"]
        assert so["scaleTargetRef"] == {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "name": "indexer",
        }
        assert (so["minReplicaCount"], so["maxReplicaCount"]) == (0, 6)
        assert (so["pollingInterval"], so["cooldownPeriod"]) == (1, 120)
        assert [t["type"] for t in so["triggers"]] == ["nats-jetstream"] * 2
        first = so["triggers"][0]["metadata"]
        assert first["natsServerMonitoringEndpoint"] == f"127.0.0.1:{monitored_nats.monitor_port}"
        assert (first["lagThreshold"], first["activationLagThreshold"]) == ("50", "2")
        await eventually(lambda: obj()["status"].get("scaledObject") == name)

        # 30 jobs at priority 0 and 20 at priority 10: the lag KEDA reads through the two
        # triggers is the 50 jobs waiting, and so is the depth the operator reports.
        for priority, count in ((0, 30), (10, 20)):
            jobs = [
                {
                    "type": "index.doc",
                    "args": [i],
                    "options": {"queue": queue, "priority": priority},
                }
                for i in range(count)
            ]
            assert (await ojs.post("/jobs/batch", json={"jobs": jobs})).status_code == 201
        jsz = (
            await nats_monitor.get(
                "/jsz", params={"acc": "$G", "consumers": "true", "config": "true"}
            )
        ).json()
        lags = [
            _lag(jsz, t["metadata"]["stream"], t["metadata"]["consumer"]) for t in so["triggers"]
        ]
        assert lags == [30, 20]
        await eventually(lambda: obj()["status"].get("depth") == 50)
        # KEDA scales, not the operator: the Deployment keeps its replicas.
        assert current(api_server, DEPLOYMENTS, "indexer")["spec"]["replicas"] == 2
        assert obj()["status"]["currentReplicas"] == 2

        # Switching to the operator's own scaling removes the ScaledObject; back to keda, it
        # returns; deleting the Queue deletes it.
        to_operator = {"spec": {"autoscaling": {"mode": "operator"}}}
        await api.patch(url_of(QUEUES, NS, name), json=to_operator, headers=MERGE)
        await eventually(lambda: scaled() is None)
        await eventually(lambda: not obj()["status"].get("scaledObject"))
        to_keda = {"spec": {"autoscaling": {"mode": "keda"}}}
        await api.patch(url_of(QUEUES, NS, name), json=to_keda, headers=MERGE)
        await eventually(scaled)
        assert (await api.delete(url_of(QUEUES, NS, name))).status_code == 200
        await eventually(lambda: obj() is None)
        assert scaled() is None
