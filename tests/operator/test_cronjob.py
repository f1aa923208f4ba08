"""A CronJob resource (plural `ojscronjobs`) end to end: kmock as the API server, a real
gateway on a real nats-server firing the jobs.

A per-second schedule (6 fields) keeps the test short: jobs arrive once a second, one per
tick; `suspend` stops them without unregistering; deleting the resource unregisters the cron
job and no job arrives after that. An expression the gateway refuses becomes a condition.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools

import httpx

from tests.operator import cluster
from tests.operator.cluster import CRONS, MERGE, NS, condition, current, eventually, url_of
from tests.support import GatewayProcess, namespace

#: Ticks are per second; allow for a tick in flight when something changes.
SETTLE_S = 1.5


async def _count(ojs: httpx.AsyncClient, queue: str) -> int:
    response = await ojs.get(f"/queues/{queue}/stats")
    return response.json()["queue"]["available"] if response.status_code == 200 else 0


async def _registered(ojs: httpx.AsyncClient, name: str) -> dict | None:
    response = await ojs.get(f"/cron/{name}")
    return response.json()["cron_job"] if response.status_code == 200 else None


async def test_cronjob_fires_jobs_every_second_and_deleting_it_stops_them(
    api_server, api: httpx.AsyncClient, ojs: httpx.AsyncClient, gateway: GatewayProcess, operator
) -> None:
    name, queue = "report-" + namespace(), "reports-" + namespace()
    spec = {
        "schedule": "* * * * * *",
        "overlapPolicy": "allow",  # nobody works these jobs: `skip` would fire only once
        "jobTemplate": {
            "type": "report.generate",
            "args": [{"kind": "hourly"}],
            "queue": queue,
            "options": {"priority": 5, "tags": ["k8s"], "meta": {"owner": "ops"}},
        },
    }
    obj = lambda: current(api_server, CRONS, name)  # noqa: E731
    async with operator(gateway.url) as op:
        created = await api.post(url_of(CRONS, NS), json=cluster.cronjob(name, spec))
        assert created.status_code in (200, 201)
        registered = await eventually(lambda: _registered(ojs, name))
        assert registered["expression"] == "* * * * * *"
        assert registered["job_template"]["options"]["queue"] == queue

        await eventually(lambda: _at_least(ojs, queue, 3), timeout=10)
        await eventually(lambda: obj()["status"].get("lastJobId"))
        status = obj()["status"]
        assert condition(obj(), "Ready")["status"] == "True"
        assert status["cronName"] == name
        assert status["runCount"] >= 1
        assert status["lastFireTime"]
        assert status["nextFireTime"] > status["lastFireTime"]
        job = (await ojs.get(f"/jobs/{status['lastJobId']}")).json()["job"]
        assert (job["type"], job["queue"], job["priority"]) == ("report.generate", queue, 5)
        assert job["args"] == [{"kind": "hourly"}]
        assert job["tags"] == ["k8s"]
        assert job["meta"]["owner"] == "ops"
        assert job["meta"]["cron_name"] == name

        # suspend: still registered, disabled, and no job arrives
        await api.patch(url_of(CRONS, NS, name), json={"spec": {"suspend": True}}, headers=MERGE)
        await eventually(lambda: _disabled(ojs, name))
        await asyncio.sleep(SETTLE_S)
        before = await _count(ojs, queue)
        await asyncio.sleep(2.0)
        assert await _count(ojs, queue) == before

        await api.patch(url_of(CRONS, NS, name), json={"spec": {"suspend": False}}, headers=MERGE)
        await eventually(lambda: _at_least(ojs, queue, before + 1), timeout=10)

        # delete: the finalizer unregisters the cron job, then no job arrives any more
        assert (await api.delete(url_of(CRONS, NS, name))).status_code == 200
        await eventually(lambda: obj() is None)
        assert await _registered(ojs, name) is None
        await asyncio.sleep(SETTLE_S)
        after = await _count(ojs, queue)
        await asyncio.sleep(2.0)
        assert await _count(ojs, queue) == after

    # every job came from its own tick, each a whole second after the previous one
    fetched = await ojs.post(
        "/workers/fetch", json={"queues": [queue], "worker_id": "w", "count": 100}
    )
    ticks = sorted(_when(j["meta"]["cron_triggered_at"]) for j in fetched.json()["jobs"])
    assert len(ticks) == after >= 4
    gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(ticks)]
    assert all(gap >= 1 and gap == int(gap) for gap in gaps), gaps
    # registered once (suspend and resume toggle it), however many resyncs ran meanwhile
    assert op.output.count(f"cron job {name} registered") == 1
    assert f"cron job {name} unregistered" in op.output


async def test_cron_expression_the_gateway_refuses_is_reported_as_a_condition(
    api_server, api: httpx.AsyncClient, ojs: httpx.AsyncClient, gateway: GatewayProcess, operator
) -> None:
    name = "broken-" + namespace()
    spec = {"schedule": "61 * * * *", "jobTemplate": {"type": "report.generate"}}
    obj = lambda: current(api_server, CRONS, name)  # noqa: E731
    async with operator(gateway.url):
        assert (await api.post(url_of(CRONS, NS), json=cluster.cronjob(name, spec))).is_success
        ready = await eventually(
            lambda: condition(obj(), "Ready").get("reason") == "GatewayRejected"
        )
        assert ready
        assert condition(obj(), "Ready")["status"] == "False"
        assert condition(obj(), "Degraded")["status"] == "True"
        assert await _registered(ojs, name) is None

        # fixing the schedule registers it
        fixed = {"spec": {"schedule": "0 * * * *"}}
        await api.patch(url_of(CRONS, NS, name), json=fixed, headers=MERGE)
        await eventually(lambda: _registered(ojs, name))
        await eventually(lambda: condition(obj(), "Ready").get("status") == "True")
        assert (await api.delete(url_of(CRONS, NS, name))).status_code == 200
        await eventually(lambda: obj() is None)


async def _at_least(ojs: httpx.AsyncClient, queue: str, count: int) -> bool:
    return await _count(ojs, queue) >= count


async def _disabled(ojs: httpx.AsyncClient, name: str) -> bool:
    registered = await _registered(ojs, name)
    return registered is not None and registered["enabled"] is False


def _when(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
