"""HA acceptance on a 3-node JetStream cluster (replicas 3) with 3 gateways and 3 workers:
10,000 jobs all complete while a worker is SIGTERMed, a gateway SIGKILLed and a NATS node
SIGKILLed then restarted. Faults are triggered by progress, so they land mid-stream on any
machine; clients fail over between gateways, and pushes carry their own ids (a retried push that
had landed gets 409 duplicate). Prints the jobs that ran twice and the longest stall."""

from __future__ import annotations

import asyncio
import collections
import itertools
import os
import time
from pathlib import Path

import httpx
import pytest

from ojs_nats.model import ids
from tests.system.conftest import FIGURES

pytestmark = [pytest.mark.cluster, pytest.mark.timeout(900)]

TOTAL = int(os.environ.get("OJS_FAILOVER_JOBS", "10000"))
QUEUE = "failover"
WORKER = "tests.system.failover_worker:worker"
#: Short leases, so a job whose claim answer was lost with a gateway or node is back soon, but
#: longer than a JetStream leader election (up to ~10 s), which heartbeats cannot bridge.
LEASE_MS = 15_000
PUSHERS = 32
SAMPLE_S = 0.1


class Gateways:
    """HTTP calls that fail over between gateways, as any client of an HA deployment would."""

    def __init__(self, urls: list[str]) -> None:
        self.clients = [httpx.AsyncClient(base_url=u, timeout=5) for u in urls]
        self._next = 0

    async def call(self, method: str, path: str, body: dict | None = None,
                   deadline_s: float = 60.0, params: dict | None = None) -> httpx.Response:
        deadline = time.monotonic() + deadline_s
        while True:
            client = self.clients[self._next % len(self.clients)]
            try:
                response = await client.request(method, path, json=body, params=params)
                if response.status_code < 500:
                    return response
            except httpx.HTTPError:
                pass
            self._next += 1
            assert time.monotonic() < deadline, f"no gateway answered {method} {path}"
            await asyncio.sleep(0.05)

    async def close(self) -> None:
        for client in self.clients:
            await client.aclose()


async def push_all(gateways: Gateways, job_ids: list[str]) -> None:
    todo: asyncio.Queue[str] = asyncio.Queue()
    for job_id in job_ids:
        todo.put_nowait(job_id)

    async def pusher() -> None:
        while not todo.empty():
            job_id = todo.get_nowait()
            response = await gateways.call("POST", "/ojs/v1/jobs", {
                "id": job_id, "type": "failover.work", "args": [2],
                "options": {"queue": QUEUE, "visibility_timeout_ms": LEASE_MS}})
            # 409 duplicate: an earlier try of this very push had landed.
            assert response.status_code in (201, 409), response.text

    await asyncio.gather(*(pusher() for _ in range(PUSHERS)))


class Completions:
    """Follows the `job.completed` events of the queue: progress for the faults, and the
    completion times for the longest stall."""

    def __init__(self, gateways: Gateways) -> None:
        self.gateways = gateways
        #: job id -> completion time (ms, from the event)
        self.at: dict[str, int] = {}
        self.changed = asyncio.Event()

    @property
    def count(self) -> int:
        return len(self.at)

    async def run(self) -> None:
        cursor = "0"
        while True:
            page = (await self.gateways.call("GET", "/ojs/v1/events", params={
                "types": "job.completed", "queues": QUEUE, "after": cursor,
                "limit": 1000})).json()
            for event in page["events"]:
                self.at.setdefault(event["subject"], ids.parse_ts(event["time"]))
            cursor = page["cursor"]
            self.changed.set()
            if not page["has_more"]:
                await asyncio.sleep(SAMPLE_S)

    async def reach(self, share: float, timeout: float = 300) -> None:
        deadline = time.monotonic() + timeout
        while self.count < share * TOTAL:
            assert time.monotonic() < deadline, f"stuck at {self.count} completions"
            self.changed.clear()
            await asyncio.wait_for(self.changed.wait(), 60)

    def longest_stall(self) -> float:
        """Longest time between two consecutive completions, in seconds."""
        times = sorted(self.at.values())
        return max((b - a for a, b in itertools.pairwise(times)), default=0) / 1000


async def all_completed(client: Gateways, completions: Completions, job_ids: list[str],
                        timeout: float = 600) -> None:
    """Until every job is completed. The events say so for nearly all; a job whose event was
    lost with a killed gateway (events follow the state change) is read back instead."""
    deadline = time.monotonic() + timeout
    quiet_since, seen = time.monotonic(), -1
    while completions.count < len(job_ids):
        assert time.monotonic() < deadline, f"only {completions.count} jobs completed"
        if completions.count != seen:
            quiet_since, seen = time.monotonic(), completions.count
        elif time.monotonic() - quiet_since > 10:
            for job_id in [j for j in job_ids if j not in completions.at]:
                job = (await client.call("GET", f"/ojs/v1/jobs/{job_id}")).json()["job"]
                if job["state"] == "completed":
                    completions.at[job_id] = ids.parse_ts(job["completed_at"])
            quiet_since = time.monotonic()
        await asyncio.sleep(0.2)


def runs_per_job(runs_dir: Path) -> collections.Counter[str]:
    runs: collections.Counter[str] = collections.Counter()
    for path in runs_dir.glob("*.runs"):
        runs.update(line for line in path.read_text().split() if line)
    return runs


async def test_10000_jobs_survive_worker_sigterm_gateway_sigkill_and_nats_node_loss(
        nats_cluster, cluster_gateway_factory, worker_factory, tmp_path):
    gateways = [cluster_gateway_factory() for _ in range(3)]
    urls = [g.url for g in gateways]
    runs_dir = tmp_path / "runs"
    runs_dir.mkdir()
    workers = [worker_factory(urls, [QUEUE], target=WORKER, OJS_CONCURRENCY="32",
                              OJS_VISIBILITY_TIMEOUT_MS=str(LEASE_MS), OJS_POLL_INTERVAL_S="0.1",
                              OJS_SHUTDOWN_GRACE_PERIOD_S="10",
                              FAILOVER_RUNS_DIR=str(runs_dir))
               for _ in range(3)]
    client = Gateways(urls)
    completions = Completions(client)
    job_ids = [ids.uuid7() for _ in range(TOTAL)]
    started = time.monotonic()
    events: list[str] = []

    def note(what: str) -> None:
        events.append(f"{time.monotonic() - started:6.1f}s  {completions.count:5d} done  {what}")

    sampling = asyncio.create_task(completions.run())
    pushing = asyncio.create_task(push_all(client, job_ids))
    try:
        await completions.reach(0.15)
        workers[0].signal(15)
        note("SIGTERM worker 0")
        await completions.reach(0.35)
        gateways[0].kill()
        note("SIGKILL gateway 0")
        await completions.reach(0.55)
        node = nats_cluster.nodes[1]
        node.kill()
        note(f"SIGKILL NATS node {node.name}")
        await asyncio.sleep(5)
        await asyncio.to_thread(node.start)
        note(f"restarted NATS node {node.name}")
        await pushing
        note("all pushed")
        await all_completed(client, completions, job_ids)
        note("all completed")
        elapsed = time.monotonic() - started
    finally:
        sampling.cancel()
        pushing.cancel()
        await asyncio.gather(sampling, pushing, return_exceptions=True)

    # The store is the judge: every job, read back, is completed.
    states: collections.Counter[str] = collections.Counter()
    check = asyncio.Semaphore(64)

    async def state_of(job_id: str) -> None:
        async with check:
            response = await client.call("GET", f"/ojs/v1/jobs/{job_id}")
            states[response.json()["job"]["state"] if response.status_code == 200
                   else str(response.status_code)] += 1

    await asyncio.gather(*(state_of(j) for j in job_ids))
    await client.close()
    assert workers[0].wait(30) == 0, workers[0].log_text()

    runs = runs_per_job(runs_dir)
    twice = sum(1 for n in runs.values() if n > 1)
    stall = completions.longest_stall()
    summary = (f"failover: {TOTAL} jobs in {elapsed:.1f} s, {twice} ran more than once, "
               f"longest stall in completions {stall:.2f} s")
    FIGURES.append(summary)
    FIGURES.extend("  " + e for e in events)
    print(summary, *events, sep="\n")
    assert states == {"completed": TOTAL}, f"not every job completed: {dict(states)}"
    assert set(runs) == set(job_ids)
