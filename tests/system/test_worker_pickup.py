"""An idle worker picks a new job up at once: it long-polls its gateway (`wait_ms`) instead of
sleeping its poll interval (1 s by default) between empty fetches."""

from __future__ import annotations

import asyncio

import httpx

from ojs_nats.model import ids

QUEUE = "pickup"


async def test_an_idle_worker_starts_each_new_job_within_a_fraction_of_its_poll_interval(
        gateway_factory, worker_factory):
    gateway = gateway_factory()
    worker_factory([gateway.url], [QUEUE], OJS_POLL_INTERVAL_S="1")  # the default, stated
    async with httpx.AsyncClient(base_url=gateway.url, timeout=10) as http:
        await asyncio.sleep(1.5)  # past the first fetch, which tells it the gateway can wait
        delays = []
        for n in range(6):
            created = await http.post("/ojs/v1/jobs", json={
                "type": "test.echo", "args": [n], "options": {"queue": QUEUE}})
            assert created.status_code == 201, created.text
            job_id = created.json()["job"]["id"]
            for _ in range(200):
                job = (await http.get(f"/ojs/v1/jobs/{job_id}")).json()["job"]
                if job["state"] == "completed":
                    break
                await asyncio.sleep(0.02)
            assert job["state"] == "completed", job
            delays.append(ids.parse_ts(job["started_at"]) - ids.parse_ts(job["enqueued_at"]))
            await asyncio.sleep(0.37)  # land anywhere in what would be a 1 s poll cycle
    # Polling every second, six jobs would wait 0-1000 ms each (all under 300 ms: ~0.1%).
    assert max(delays) < 300, delays


async def test_a_long_poll_whose_worker_went_away_claims_nothing(gateway_factory):
    gateway = gateway_factory()
    async with httpx.AsyncClient(base_url=gateway.url, timeout=10) as http:
        try:
            async with httpx.AsyncClient(base_url=gateway.url, timeout=0.4) as impatient:
                await impatient.post("/ojs/v1/workers/fetch",
                                     json={"queues": ["gone"], "wait_ms": 10_000})
            raise AssertionError("the long poll answered before its client gave up")
        except httpx.ReadTimeout:
            pass  # the worker is gone; its fetch is still waiting on the gateway
        await asyncio.sleep(0.3)
        created = await http.post("/ojs/v1/jobs", json={
            "type": "test.echo", "args": [], "options": {"queue": "gone"}})
        assert created.status_code == 201, created.text
        await asyncio.sleep(0.8)  # the abandoned poll was woken by now and has given up
        job = (await http.get(f"/ojs/v1/jobs/{created.json()['job']['id']}")).json()["job"]
        assert job["state"] == "available"
        fetched = (await http.post("/ojs/v1/workers/fetch", json={"queues": ["gone"]})).json()
        assert [j["id"] for j in fetched["jobs"]] == [job["id"]]


async def test_a_busy_worker_with_free_slots_starts_a_new_job_at_once(gateway_factory,
                                                                       worker_factory):
    """A worker running a long job, with slots free, long-polls too: a new job does not wait
    for its next poll (5 s here)."""
    gateway = gateway_factory()
    worker_factory([gateway.url], ["pickup-busy"], target="tests.system.blocking_worker:worker",
                   OJS_POLL_INTERVAL_S="5", OJS_CONCURRENCY="4")

    async def push(seconds: float) -> str:
        created = await http.post("/ojs/v1/jobs", json={
            "type": "blocking.sleep", "args": [seconds], "options": {"queue": "pickup-busy"}})
        assert created.status_code == 201, created.text
        return str(created.json()["job"]["id"])

    async def started(job_id: str) -> dict:
        for _ in range(300):
            job = (await http.get(f"/ojs/v1/jobs/{job_id}")).json()["job"]
            if job["state"] in ("active", "completed"):
                return job
            await asyncio.sleep(0.02)
        raise AssertionError(f"job {job_id} never started: {job}")

    async with httpx.AsyncClient(base_url=gateway.url, timeout=10) as http:
        await asyncio.sleep(1.5)  # past the first fetch, which tells it the gateway can wait
        await started(await push(30))  # holds one slot for the whole test
        delays = []
        for n in range(4):
            await asyncio.sleep(0.6 + 0.37 * n)
            job = await started(await push(0))
            delays.append(ids.parse_ts(job["started_at"]) - ids.parse_ts(job["enqueued_at"]))
    # Polling every 5 s, a job would wait up to 5 s; all four under 300 ms by luck: ~0.01%.
    assert max(delays) < 300, delays
