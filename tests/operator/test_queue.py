"""A Queue resource end to end: kmock as the API server, a real gateway on a real nats-server.

Creating the resource configures the queue through the gateway's HTTP API; patching `paused`
pauses it; a queue resumed by hand is paused again by the drift check; a second resource
claiming the same queue from another namespace is refused; deleting the resource removes the
queue (the finalizer holds the object until the gateway forgot it).
"""

from __future__ import annotations

import httpx
from ojs_operator import crds

from tests.operator import cluster
from tests.operator.cluster import MERGE, NS, QUEUES, condition, current, eventually, url_of
from tests.support import GatewayProcess, namespace

FINALIZER = f"{crds.GROUP}/finalizer"


async def _config(ojs: httpx.AsyncClient, queue: str) -> dict | None:
    response = await ojs.get(f"/queues/{queue}/config")
    return response.json() if response.status_code == 200 else None


async def test_queue_resource_configures_pauses_and_removes_the_gateway_queue(
    api_server, api: httpx.AsyncClient, ojs: httpx.AsyncClient, gateway: GatewayProcess, operator
) -> None:
    name = "emails-" + namespace()
    spec = {
        "rateLimit": {"concurrency": 7, "window": {"limit": 600, "period": "PT60S"}},
        "backpressure": {"maxDepth": 1000, "strategy": "drop_oldest"},
        "retry": {"maxAttempts": 5, "initialInterval": "PT5S", "onExhaustion": "dead_letter"},
        "deadLetter": {"retention": "P14D"},
        "retention": {"completed": "PT1H"},
        "visibilityTimeoutSeconds": 120,
    }
    obj = lambda: current(api_server, QUEUES, name)  # noqa: E731
    async with operator(gateway.url) as op:
        created = await api.post(url_of(QUEUES, NS), json=cluster.queue(name, spec))
        assert created.status_code in (200, 201)

        config = await eventually(lambda: _config(ojs, name))
        assert config["paused"] is False
        assert config["concurrency"] == 7
        assert config["rate_limit"] == {"limit": 600, "period": "PT1M"}
        assert config["backpressure"]["max_depth"] == 1000
        assert config["backpressure"]["strategy"] == "drop_oldest"
        retry = config["default_retry"]
        assert (retry["max_attempts"], retry["initial_interval"]) == (5, "PT5S")
        assert retry["backoff_coefficient"] == 2.0  # the CRD's default, applied by the operator
        assert retry["on_exhaustion"] == "dead_letter"
        assert config["dead_letter_ttl"] == "P14D"
        assert config["retention"] == {"completed": "PT1H"}
        assert config["visibility_timeout"] == 120
        assert config["throttle"] is None
        assert config["default_timeout"] is None

        await eventually(lambda: condition(obj(), "Ready").get("status") == "True")
        status = obj()["status"]
        assert status["queueName"] == name
        assert status["observedGeneration"] == 1
        assert condition(obj(), "Degraded")["status"] == "False"
        assert FINALIZER in obj()["metadata"]["finalizers"]

        # Patching `paused` pauses the queue; fetch hands out nothing from it.
        patched = await api.patch(
            url_of(QUEUES, NS, name), json={"spec": {"paused": True}}, headers=MERGE
        )
        assert patched.status_code == 200
        await eventually(lambda: _paused(ojs, name))
        await eventually(lambda: obj()["status"].get("observedGeneration") == 2)
        job = await ojs.post(
            "/jobs", json={"type": "mail.send", "args": [], "options": {"queue": name}}
        )
        fetched = await ojs.post("/workers/fetch", json={"queues": [name], "worker_id": "w"})
        assert fetched.json()["jobs"] == []

        # Someone resumes the queue by hand: the drift check (every second here) pauses it again.
        resumed = await ojs.post(f"/queues/{name}/resume")
        assert resumed.json()["queue"]["paused"] is False
        await eventually(lambda: _paused(ojs, name), timeout=10)

        # A second resource for the same queue, in another namespace, does not take it over,
        # and deleting it leaves the queue alone.
        rival = cluster.queue("rival", {"queueName": name}, namespace="other")
        assert (await api.post(url_of(QUEUES, "other"), json=rival)).status_code in (200, 201)
        rival_obj = lambda: current(api_server, QUEUES, "rival", "other")  # noqa: E731
        await eventually(lambda: condition(rival_obj(), "Ready").get("reason") == "NameConflict")
        assert f"{NS}/{name}" in condition(rival_obj(), "Ready")["message"]
        assert (await api.delete(url_of(QUEUES, "other", "rival"))).status_code == 200
        await eventually(lambda: rival_obj() is None)
        assert await _paused(ojs, name)

        # Deleting the resource removes the queue (empty by then: the gateway refuses otherwise).
        assert (await ojs.delete(f"/jobs/{job.json()['job']['id']}")).status_code == 200
        assert (await api.delete(url_of(QUEUES, NS, name))).status_code == 200
        await eventually(lambda: obj() is None)
        assert await _config(ojs, name) is None
        versions = [v for v in api_server.objects[QUEUES, NS, name].history if v]
        deleting = [v for v in versions if v["metadata"].get("deletionTimestamp")]
        assert deleting
        assert FINALIZER in deleting[0]["metadata"]["finalizers"]

    # created, paused, resumed by hand: three writes, however many resyncs ran meanwhile
    assert op.output.count(f"queue {name} configured") == 3
    assert f"queue {name} deleted" in op.output


async def test_deleting_a_queue_that_still_holds_jobs_resets_its_settings_and_keeps_the_jobs(
    api_server, api: httpx.AsyncClient, ojs: httpx.AsyncClient, gateway: GatewayProcess, operator
) -> None:
    name = "busy-" + namespace()
    spec = {"paused": True, "rateLimit": {"concurrency": 2}}
    obj = lambda: current(api_server, QUEUES, name)  # noqa: E731
    async with operator(gateway.url) as op:
        assert (await api.post(url_of(QUEUES, NS), json=cluster.queue(name, spec))).is_success
        await eventually(lambda: _paused(ojs, name))
        job = await ojs.post(
            "/jobs", json={"type": "mail.send", "args": [], "options": {"queue": name}}
        )
        assert job.status_code == 201

        assert (await api.delete(url_of(QUEUES, NS, name))).status_code == 200
        await eventually(lambda: obj() is None)
        config = await _config(ojs, name)
        assert config is not None
        assert config["paused"] is False
        assert config["concurrency"] is None
        info = await ojs.get(f"/jobs/{job.json()['job']['id']}")
        assert info.json()["job"]["state"] == "available"
    assert "still holds jobs: settings reset" in op.output


async def _paused(ojs: httpx.AsyncClient, queue: str) -> bool:
    config = await _config(ojs, queue)
    return bool(config and config["paused"])
