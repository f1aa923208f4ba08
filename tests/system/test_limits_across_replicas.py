"""Queue limits hold across gateway replicas: three gateway processes share one budget.

Workers fetch through all three replicas at once. The achieved start rate of a queue limited to
50 jobs/s is measured from the jobs' `started_at` (server time) over 20 seconds; a concurrency
limit of 5 is sampled continuously, both as the workers see it and as the slots store holds it.
"""

from __future__ import annotations

import asyncio
import time

import httpx

from ojs_nats.model import ids

RATE = 50
WINDOW_S = 20


async def configure(http: httpx.AsyncClient, queue: str, config: dict) -> None:
    response = await http.put(f"/ojs/v1/queues/{queue}/config", json=config)
    assert response.status_code == 200, response.text


async def preload(http: httpx.AsyncClient, queue: str, total: int) -> None:
    for start in range(0, total, 1000):
        jobs = [{"type": "sys.limit", "args": [n], "options": {"queue": queue}}
                for n in range(start, min(total, start + 1000))]
        response = await http.post("/ojs/v1/jobs/batch", json={"jobs": jobs})
        assert response.status_code == 201, response.text


async def test_a_rate_limit_of_50_per_second_holds_across_three_replicas(gateway_factory):
    gateways = [gateway_factory() for _ in range(3)]
    clients = [httpx.AsyncClient(base_url=g.url, timeout=30) for g in gateways]
    try:
        await configure(clients[0], "rate-sys", {"rate_limit": {"limit": RATE, "period": "PT1S"}})
        await preload(clients[0], "rate-sys", RATE * (WINDOW_S + 6))
        started: list[int] = []
        stop = time.monotonic() + WINDOW_S + 2

        async def worker(index: int) -> None:
            http = clients[index % 3]
            while time.monotonic() < stop:
                jobs = (await http.post("/ojs/v1/workers/fetch", json={
                    "queues": ["rate-sys"], "count": 5, "worker_id": f"w{index}"})).json()["jobs"]
                if not jobs:
                    await asyncio.sleep(0.01)
                    continue
                started.extend(ids.parse_ts(j["started_at"]) for j in jobs)
                await asyncio.gather(*(http.post("/ojs/v1/workers/ack", json={"job_id": j["id"]})
                                       for j in jobs))

        await asyncio.gather(*(worker(i) for i in range(9)))
    finally:
        for http in clients:
            await http.aclose()
    first = min(started)
    in_window = sum(1 for t in started if first <= t < first + WINDOW_S * 1000)
    achieved = in_window / WINDOW_S
    print(f"\nachieved {achieved:.1f} jobs/s over {WINDOW_S} s (limit {RATE}/s, 3 replicas)")
    assert RATE * 0.9 <= achieved <= RATE * 1.1


async def test_a_concurrency_limit_of_5_is_never_exceeded_across_three_replicas(gateway_factory):
    limit, total = 5, 300
    gateways = [gateway_factory() for _ in range(3)]
    clients = [httpx.AsyncClient(base_url=g.url, timeout=30) for g in gateways]
    running = 0
    seen_by_workers: list[int] = []
    seen_in_store: list[int] = []
    done = 0
    try:
        await configure(clients[0], "conc-sys", {"concurrency": limit})
        await preload(clients[0], "conc-sys", total)
        finished = asyncio.Event()

        async def worker(index: int) -> None:
            nonlocal running, done
            http = clients[index % 3]
            while not finished.is_set():
                jobs = (await http.post("/ojs/v1/workers/fetch", json={
                    "queues": ["conc-sys"], "count": 2, "worker_id": f"w{index}"})).json()["jobs"]
                if not jobs:
                    await asyncio.sleep(0.005)
                    continue
                running += len(jobs)  # counted once the gateway handed them out...
                seen_by_workers.append(running)
                await asyncio.sleep(0.03 + 0.02 * (index % 4))
                for job in jobs:
                    running -= 1  # ...and uncounted before the ack is even sent
                    await http.post("/ojs/v1/workers/ack", json={"job_id": job["id"]})
                    done += 1
                if done >= total:
                    finished.set()

        async def sampler() -> None:
            while not finished.is_set():
                seen_by_workers.append(running)
                stats = (await clients[len(seen_in_store) % 3].get(
                    "/ojs/v1/queues/conc-sys/stats")).json()["queue"]
                seen_in_store.append(stats["limits"]["concurrency"]["active"])

        await asyncio.wait_for(
            asyncio.gather(sampler(), *(worker(i) for i in range(12))), timeout=120)
    finally:
        for http in clients:
            await http.aclose()
    print(f"\nmax active: {max(seen_by_workers)} seen by workers ({len(seen_by_workers)} samples),"
          f" {max(seen_in_store)} in the slot store ({len(seen_in_store)} samples)")
    assert max(seen_by_workers) <= limit
    assert max(seen_in_store) <= limit
    assert max(seen_by_workers) == limit  # the limit was actually reached, so it was tested
