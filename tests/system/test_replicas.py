"""Several gateway processes on one nats-server: no shared memory, one store.

These are the acceptance tests of the gateway core: any replica serves any job, concurrent
fetchers never receive the same job twice, and a replica killed mid-stream loses nothing.
"""

from __future__ import annotations

import asyncio
import collections
import time

import httpx

from ojs_nats.model import ids


async def push(http: httpx.AsyncClient, queue: str, n: int) -> dict:
    response = await http.post("/ojs/v1/jobs",
                               json={"type": "sys.test", "args": [n], "options": {"queue": queue}})
    assert response.status_code == 201, response.text
    return response.json()["job"]


async def test_a_job_can_be_served_by_any_replica(gateway_factory):
    a, b = gateway_factory(), gateway_factory()
    async with httpx.AsyncClient(base_url=a.url) as ha, httpx.AsyncClient(base_url=b.url) as hb:
        job = await push(ha, "cross", 1)
        fetched = (await hb.post("/ojs/v1/workers/fetch",
                                 json={"queues": ["cross"], "worker_id": "w",
                                       "visibility_timeout_ms": 60_000})).json()["jobs"]
        assert [j["id"] for j in fetched] == [job["id"]]
        beat = (await ha.post("/ojs/v1/workers/heartbeat",
                              json={"worker_id": "w", "active_jobs": [job["id"]]})).json()
        assert beat["jobs_extended"] == [job["id"]]
        acked = (await hb.post("/ojs/v1/workers/ack",
                               json={"job_id": job["id"], "result": {"ok": 1}})).json()
        assert acked["state"] == "completed"
        assert (await ha.get(f"/ojs/v1/jobs/{job['id']}")).json()["job"]["result"] == {"ok": 1}


async def test_eight_fetchers_on_two_replicas_drain_2000_jobs_exactly_once(gateway_factory):
    a, b = gateway_factory(), gateway_factory()
    total = 2000
    async with httpx.AsyncClient(base_url=a.url, timeout=30) as ha, \
            httpx.AsyncClient(base_url=b.url, timeout=30) as hb:
        pushed: list[str] = []
        for start in range(0, total, 100):
            batch = await asyncio.gather(*(push((ha, hb)[n % 2], "drain", n)
                                           for n in range(start, start + 100)))
            pushed += [j["id"] for j in batch]
        handed_out: collections.Counter[str] = collections.Counter()

        async def fetcher(index: int) -> None:
            http = (ha, hb)[index % 2]
            idle = 0
            while idle < 3:
                jobs = (await http.post("/ojs/v1/workers/fetch", json={
                    "queues": ["drain"], "count": 10, "worker_id": f"w{index}"})).json()["jobs"]
                if not jobs:
                    idle += 1
                    await asyncio.sleep(0.05)
                    continue
                idle = 0
                for job in jobs:
                    handed_out[job["id"]] += 1
                    ack = await (ha, hb)[(index + 1) % 2].post(
                        "/ojs/v1/workers/ack", json={"job_id": job["id"], "worker_id": f"w{index}"})
                    assert ack.status_code == 200, ack.text

        await asyncio.gather(*(fetcher(i) for i in range(8)))
        assert sorted(handed_out) == sorted(pushed), "a job was left behind"
        twice = [job for job, n in handed_out.items() if n > 1]
        assert twice == [], f"{len(twice)} jobs handed out twice"
        queues = {q["name"]: q for q in (await ha.get("/ojs/v1/queues")).json()["queues"]}
        assert queues["drain"]["available"] == 0
        assert queues["drain"]["active"] == 0


async def test_sigkill_of_a_replica_mid_stream_loses_no_acknowledged_job(gateway_factory):
    a, b = gateway_factory(), gateway_factory()
    accepted: set[str] = set()
    completed: set[str] = set()
    stop_producing = asyncio.Event()

    async with httpx.AsyncClient(base_url=a.url, timeout=5) as ha, \
            httpx.AsyncClient(base_url=b.url, timeout=5) as hb:
        clients = [ha, hb]

        async def producer(index: int) -> None:
            n = 0
            while not stop_producing.is_set():
                http = clients[(index + n) % 2]
                n += 1
                try:
                    job = await push(http, "crash", n)
                except (httpx.HTTPError, AssertionError):
                    continue  # no 201: the client does not count the job as accepted
                accepted.add(job["id"])

        async def consumer(index: int) -> None:
            n = 0
            while True:
                http = clients[(index + n) % 2]
                n += 1
                try:
                    jobs = (await http.post("/ojs/v1/workers/fetch", json={
                        "queues": ["crash"], "count": 5, "worker_id": f"c{index}",
                        "visibility_timeout_ms": 1500})).json()["jobs"]
                except httpx.HTTPError:
                    continue  # a reply lost with the dead replica: the lease expires
                for job in jobs:
                    for attempt in range(4):
                        try:
                            r = await clients[(index + attempt) % 2].post(
                                "/ojs/v1/workers/ack", json={"job_id": job["id"]})
                        except httpx.HTTPError:
                            continue
                        if r.status_code in (200, 409):  # 409: an earlier try landed
                            completed.add(job["id"])
                        break
                if not jobs:
                    await asyncio.sleep(0.02)

        producers = [asyncio.create_task(producer(i)) for i in range(4)]
        consumers = [asyncio.create_task(consumer(i)) for i in range(4)]
        await asyncio.sleep(2.0)
        a.kill()  # SIGKILL in the middle of enqueues and fetches
        killed_at = len(accepted)
        await asyncio.sleep(2.0)
        stop_producing.set()
        await asyncio.gather(*producers)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not accepted <= completed:
            await asyncio.sleep(0.2)
        for task in consumers:
            task.cancel()
        await asyncio.gather(*consumers, return_exceptions=True)

        assert killed_at > 50, "the kill should land mid-stream"
        # The store is the judge: every accepted job must be completed there.
        states = collections.Counter()
        for job_id in accepted:
            states[(await hb.get(f"/ojs/v1/jobs/{job_id}")).json()["job"]["state"]] += 1
        assert states == {"completed": len(accepted)}, f"not all accepted jobs completed: {states}"
        assert all(ids.is_uuid7(j) for j in accepted)


async def test_a_replica_acting_on_its_own_stale_copy_of_a_job_never_wins(gateway_factory):
    """A replica remembers the records it wrote and tries a transition on that copy without a
    read; when another replica has moved the job on since, the copy must lose to the store."""
    a, b = gateway_factory(), gateway_factory()
    async with httpx.AsyncClient(base_url=a.url) as ha, httpx.AsyncClient(base_url=b.url) as hb:
        job = await push(ha, "stale", 1)
        fetch = {"queues": ["stale"], "worker_id": "w", "visibility_timeout_ms": 60_000}
        assert [j["id"] for j in (await ha.post("/ojs/v1/workers/fetch", json=fetch)).json()[
            "jobs"]] == [job["id"]]  # A remembers the job active at this step
        nack = await hb.post("/ojs/v1/workers/nack", json={
            "job_id": job["id"], "requeue": True,
            "error": {"code": "handoff", "message": "handed back"}})
        assert nack.status_code == 200, nack.text
        # A's copy says active, the store says available: the ACK is refused, nothing changes.
        refused = await ha.post("/ojs/v1/workers/ack", json={"job_id": job["id"]})
        assert refused.status_code == 409, refused.text
        assert (await hb.get(f"/ojs/v1/jobs/{job['id']}")).json()["job"]["state"] == "available"
        # B claims it again; A's copy (the earlier claim) is stale once more, and A's ACK of
        # the new claim lands on the stored record.
        assert [j["id"] for j in (await hb.post("/ojs/v1/workers/fetch", json=fetch)).json()[
            "jobs"]] == [job["id"]]
        acked = await ha.post("/ojs/v1/workers/ack",
                              json={"job_id": job["id"], "result": {"n": 2}})
        assert acked.status_code == 200, acked.text
        stored = (await hb.get(f"/ojs/v1/jobs/{job['id']}")).json()["job"]
        assert stored["state"] == "completed"
        assert stored["result"] == {"n": 2}
        assert stored["attempt"] == 2
