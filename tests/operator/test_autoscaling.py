"""Autoscaling by queue depth, end to end: a real gateway holds the jobs, kmock the Deployment.

500 waiting jobs with a target of 100 per replica and at most 4 replicas scale the worker
Deployment to 4; once the queue drained, it goes back to the minimum (0 here, which also
shows scale to zero and the activation threshold) only after the scale-down cooldown.
"""

from __future__ import annotations

import asyncio
import time

import httpx
import kmock

from tests.operator import cluster
from tests.operator.cluster import DEPLOYMENTS, NS, QUEUES, current, eventually, url_of
from tests.support import GatewayProcess, namespace

COOLDOWN_S = 4
POLL_S = 1
#: The window counts from the last reading that still saw jobs, up to a poll before the drain
#: ended, and the operator's timer ticks once a second.
SLACK_S = POLL_S + 1.0


def _replicas(api_server) -> int:
    return int(current(api_server, DEPLOYMENTS, "mailer")["spec"]["replicas"])


async def _push(ojs: httpx.AsyncClient, queue: str, count: int) -> None:
    jobs = [{"type": "mail.send", "args": [i], "options": {"queue": queue}} for i in range(count)]
    response = await ojs.post("/jobs/batch", json={"jobs": jobs})
    assert response.status_code == 201, response.text


async def _drain(ojs: httpx.AsyncClient, queue: str) -> int:
    """Work the queue as fast as possible: fetch 100 at a time, ack them all."""
    done = 0
    while True:
        fetched = await ojs.post(
            "/workers/fetch", json={"queues": [queue], "worker_id": "w", "count": 100}
        )
        jobs = fetched.json()["jobs"]
        if not jobs:
            return done
        acks = [ojs.post("/workers/ack", json={"job_id": j["id"], "result": None}) for j in jobs]
        for answer in await asyncio.gather(*acks):
            assert answer.status_code == 200, answer.text
        done += len(jobs)


async def test_depth_scales_the_deployment_to_max_and_back_to_min_after_the_cooldown(
    api_server, api: httpx.AsyncClient, ojs: httpx.AsyncClient, gateway: GatewayProcess, operator
) -> None:
    queue = "mail-" + namespace()
    api_server.objects[DEPLOYMENTS, NS, "mailer"] = cluster.deployment("mailer", replicas=1)
    spec = {
        "autoscaling": {
            "targetRef": {"name": "mailer"},
            "minReplicas": 0,
            "maxReplicas": 4,
            "activationThreshold": 5,
            "targetWaitingJobsPerReplica": 100,
            "scaleUpCooldownSeconds": 0,
            "scaleDownCooldownSeconds": COOLDOWN_S,
            "pollingIntervalSeconds": POLL_S,
        }
    }
    obj = lambda: current(api_server, QUEUES, queue)  # noqa: E731
    async with operator(gateway.url) as op:
        started = time.monotonic()
        assert (await api.post(url_of(QUEUES, NS), json=cluster.queue(queue, spec))).is_success

        # An idle queue: the running replica goes, but not before a whole cooldown was seen.
        await eventually(lambda: _replicas(api_server) == 0, timeout=COOLDOWN_S + 10)
        assert time.monotonic() - started >= COOLDOWN_S - SLACK_S

        # Below the activation threshold nothing wakes up.
        await _push(ojs, queue, 3)
        await eventually(lambda: obj()["status"].get("depth") == 3)
        await asyncio.sleep(2 * POLL_S + 0.5)
        assert _replicas(api_server) == 0

        # 500 waiting: ceil(500 / 100) = 5, capped at maxReplicas.
        await _push(ojs, queue, 497)
        await eventually(lambda: _replicas(api_server) == 4, timeout=10)
        await eventually(lambda: obj()["status"].get("depth") == 500)
        status = obj()["status"]
        assert status["desiredReplicas"] == 4
        assert status["currentReplicas"] == 4
        assert status["lastScaleTime"]

        # Drained: the minimum only a cooldown after the last reading that saw jobs (on the way
        # it may step down as older, higher readings leave the window, as the HPA does).
        assert await _drain(ojs, queue) == 500
        drained = time.monotonic()
        history: list[tuple[float, int]] = []

        def at_min() -> bool:
            history.append((time.monotonic() - drained, _replicas(api_server)))
            return history[-1][1] == 0

        await eventually(at_min, timeout=COOLDOWN_S + 10)
        reached_min = history[-1][0]
        assert reached_min >= COOLDOWN_S - SLACK_S, history
        assert reached_min <= COOLDOWN_S + 2 * SLACK_S, history
        await eventually(lambda: obj()["status"]["desiredReplicas"] == 0)
        assert obj()["status"]["depth"] == 0

    # Every change went through the Deployment's scale subresource.
    scaled = [
        r.data["spec"]["replicas"]
        for r in api_server["patch", kmock.resource(DEPLOYMENTS), kmock.subresource("scale")]
    ]
    # 1 -> 0 (idle), 0 -> 4 in one step, then down (maybe in steps) to 0
    assert scaled[:2] == [0, 4], scaled
    assert scaled[1:] == sorted(scaled[1:], reverse=True), scaled
    assert scaled[-1] == 0, scaled
    assert "scaled Deployment mailer from 0 to 4 replicas (depth 500" in op.output
