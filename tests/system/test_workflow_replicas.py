"""Workflows across gateway replicas: exactly-once callbacks under concurrency, and a chain
that survives a replica being killed mid-run."""

from __future__ import annotations

import asyncio
import collections
import time

import httpx


async def run_batch(urls: list[str], size: int, fail_index: int | None) -> dict[str, int]:
    callbacks = {name: {"type": f"cb.{name}", "args": [], "options": {"queue": f"{name[3:]}-cb"}}
                 for name in ("on_complete", "on_success", "on_failure")}
    jobs = [{"type": "bulk.item", "args": [i],
             "options": {"queue": "bulk", "retry": {"max_attempts": 1}}} for i in range(size)]
    clients = [httpx.AsyncClient(base_url=u, timeout=30) for u in urls]
    try:
        created = await clients[0].post("/ojs/v1/workflows", json={
            "type": "batch", "jobs": jobs, "callbacks": callbacks})
        assert created.status_code == 201, created.text
        workflow_id = created.json()["workflow"]["id"]

        async def worker(index: int) -> None:
            idle = 0
            while idle < 5:
                http = clients[index % 2]
                fetched = (await http.post("/ojs/v1/workers/fetch", json={
                    "queues": ["bulk"], "count": 10, "worker_id": f"w{index}"})).json()["jobs"]
                if not fetched:
                    idle += 1
                    await asyncio.sleep(0.1)
                    continue
                idle = 0
                for job in fetched:
                    other = clients[(index + 1) % 2]
                    if job["args"][0] == fail_index:
                        await other.post("/ojs/v1/workers/nack", json={
                            "job_id": job["id"], "error": {"message": "planned failure"}})
                    else:
                        await other.post("/ojs/v1/workers/ack", json={
                            "job_id": job["id"], "result": {"i": job["args"][0]}})

        await asyncio.gather(*(worker(i) for i in range(8)))
        deadline = time.monotonic() + 30
        state = "running"
        while time.monotonic() < deadline and state == "running":
            workflow = (await clients[1].get(f"/ojs/v1/workflows/{workflow_id}")).json()
            state = workflow["workflow"]["state"]
            if workflow["workflow"]["jobs_completed"] + workflow["workflow"]["jobs_failed"] == (
                    size) and all(c["fired"] is False or c["state"] != "not_fired"
                                  for c in workflow["workflow"]["callbacks"].values()):
                break
            await asyncio.sleep(0.2)
        await asyncio.sleep(1.0)
        fired: dict[str, int] = {}
        for name in ("complete", "success", "failure"):
            got = (await clients[0].post("/ojs/v1/workers/fetch", json={
                "queues": [f"{name}-cb"], "count": 10})).json()["jobs"]
            fired[name] = len(got)
            if got and name == "complete":
                assert len(got[0]["parent_results"]) == size
        return fired
    finally:
        for client in clients:
            await client.aclose()


async def test_a_1000_job_batch_fires_each_callback_exactly_once(gateway_factory):
    urls = [gateway_factory().url, gateway_factory().url]
    assert await run_batch(urls, 1000, None) == {"complete": 1, "success": 1, "failure": 0}


async def test_a_batch_with_one_failure_fires_on_failure_exactly_once(gateway_factory):
    urls = [gateway_factory().url, gateway_factory().url]
    assert await run_batch(urls, 1000, 617) == {"complete": 1, "success": 0, "failure": 1}


async def test_a_50_step_chain_survives_a_replica_killed_mid_run(gateway_factory):
    a, b = gateway_factory(), gateway_factory()
    runs: collections.Counter[int] = collections.Counter()
    steps = [{"type": "chain.add", "args": [i], "options": {"queue": "long-chain"}}
             for i in range(50)]
    async with httpx.AsyncClient(base_url=a.url, timeout=5) as ha, \
            httpx.AsyncClient(base_url=b.url, timeout=5) as hb:
        workflow_id = (await hb.post("/ojs/v1/workflows", json={
            "type": "chain", "steps": steps})).json()["workflow"]["id"]
        clients = [ha, hb]
        killed = False
        deadline = time.monotonic() + 90
        n = 0
        while time.monotonic() < deadline:
            n += 1
            http = clients[n % 2] if not killed else hb
            if not killed and sum(runs.values()) >= 20:
                a.kill()  # SIGKILL while the chain is running
                killed = True
                continue
            try:
                jobs = (await http.post("/ojs/v1/workers/fetch", json={
                    "queues": ["long-chain"], "visibility_timeout_ms": 2000})).json()["jobs"]
            except httpx.HTTPError:
                continue
            if not jobs:
                state = (await hb.get(f"/ojs/v1/workflows/{workflow_id}")).json()["workflow"]
                if state["state"] != "running":
                    break
                await asyncio.sleep(0.05)
                continue
            job = jobs[0]
            previous = job["parent_results"][-1]["sum"] if job["parent_results"] else 0
            runs[job["args"][0]] += 1
            try:
                await http.post("/ojs/v1/workers/ack", json={
                    "job_id": job["id"], "result": {"sum": previous + job["args"][0]}})
            except httpx.HTTPError:
                await hb.post("/ojs/v1/workers/ack", json={
                    "job_id": job["id"], "result": {"sum": previous + job["args"][0]}})
        final = (await hb.get(f"/ojs/v1/workflows/{workflow_id}")).json()["workflow"]
        last = (await hb.get(f"/ojs/v1/jobs/{final['steps'][-1]['job_id']}")).json()["job"]
    duplicates = {step: count for step, count in runs.items() if count > 1}
    print(f"\n50-step chain across a killed replica: {len(runs)} steps ran, "
          f"duplicates: {duplicates or 'none'}")
    assert killed
    assert final["state"] == "completed", final
    assert final["steps_completed"] == 50
    assert sorted(runs) == list(range(50))
    assert last["result"] == {"sum": sum(range(50))}
