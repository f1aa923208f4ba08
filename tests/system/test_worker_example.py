"""The example worker (`ojs-nats worker ojs_nats.worker.example:worker`) against a gateway:
each standard conformance handler behaves as ojs-conformance.md §5.4 says, end to end.

One gateway and one worker process serve the module; `test.panic` crashes its worker, so it
gets a worker (and queue) of its own.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from ojs_nats.embedded import NatsServer
from ojs_nats.model import ids
from tests.support import EXAMPLE_WORKER, GatewayProcess, WorkerProcess, namespace

QUEUE = "examples"
CONCURRENCY = 4
FAST_RETRY = {"max_attempts": 3, "initial_interval": "PT0.2S", "backoff_coefficient": 1.0,
              "jitter": False}


@pytest.fixture(scope="module")
def gateway(nats_server: NatsServer, tmp_path_factory) -> Iterator[GatewayProcess]:
    gateway = GatewayProcess(nats_server.url, namespace(),
                             log_dir=tmp_path_factory.mktemp("gateway"))
    yield gateway.start()
    gateway.kill()


@pytest.fixture(scope="module")
def example_worker(gateway: GatewayProcess, tmp_path_factory) -> Iterator[WorkerProcess]:
    worker = WorkerProcess(
        EXAMPLE_WORKER, [gateway.url], [QUEUE], log_dir=tmp_path_factory.mktemp("worker"),
        env={"OJS_CONCURRENCY": str(CONCURRENCY), "OJS_POLL_INTERVAL_S": "0.1"})
    yield worker.start()
    worker.kill()


@pytest.fixture
async def http(gateway: GatewayProcess, example_worker: WorkerProcess
               ) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=gateway.url, timeout=10) as client:
        yield client


async def push(http: httpx.AsyncClient, job_type: str, args: list | None = None,
               queue: str = QUEUE, **options) -> str:
    response = await http.post("/ojs/v1/jobs", json={
        "type": job_type, "args": args or [], "options": {"queue": queue, **options}})
    assert response.status_code == 201, response.text
    return response.json()["job"]["id"]


async def info(http: httpx.AsyncClient, job_id: str) -> dict:
    return (await http.get(f"/ojs/v1/jobs/{job_id}")).json()["job"]


async def settled(http: httpx.AsyncClient, job_id: str, states: set[str],
                  timeout: float = 15.0) -> dict:
    """The job once it reached one of `states` (polled)."""
    deadline = time.monotonic() + timeout
    while True:
        job = await info(http, job_id)
        if job["state"] in states or time.monotonic() > deadline:
            assert job["state"] in states, f"job stuck in {job['state']}: {job}"
            return job
        await asyncio.sleep(0.05)


async def test_echo_returns_its_args_as_the_result(http):
    args = [1, "two", {"three": [3]}, None]
    job = await settled(http, await push(http, "test.echo", args), {"completed"})
    assert job["result"] == args
    assert job["attempt"] == 1


async def test_fail_once_completes_on_attempt_2(http):
    job = await settled(http, await push(http, "test.fail_once", retry=FAST_RETRY), {"completed"})
    assert job["attempt"] == 2
    assert job["result"] == {"attempt": 2}
    assert [e["code"] for e in job["errors"]] == ["retry"]
    assert job["errors"][0]["attempt"] == 1


async def test_fail_twice_completes_on_attempt_3(http):
    job = await settled(http, await push(http, "test.fail_twice", retry=FAST_RETRY),
                        {"completed"})
    assert job["attempt"] == 3
    assert [e["attempt"] for e in job["errors"]] == [1, 2]


async def test_fail_always_ends_in_the_dead_letter_queue(http):
    policy = {**FAST_RETRY, "max_attempts": 2, "on_exhaustion": "dead_letter"}
    job_id = await push(http, "test.fail_always", retry=policy)
    job = await settled(http, job_id, {"discarded"})
    assert job["attempt"] == 2
    assert all(e["retryable"] is True and e["type"] == "Retry" for e in job["errors"])
    dead = (await http.get("/ojs/v1/dead-letter", params={"queue": QUEUE})).json()["jobs"]
    assert job_id in [j["id"] for j in dead]


async def test_slow_sleeps_reporting_progress_then_completes(http):
    job_id = await push(http, "test.slow", [1500])
    running = await settled(http, job_id, {"active"})
    deadline = time.monotonic() + 5
    while (midway := (await http.get(f"/ojs/v1/jobs/{job_id}/progress")).json())[
            "progress"] is None:
        assert time.monotonic() < deadline, "no progress reported"
        await asyncio.sleep(0.05)
    assert midway["state"] == "active"
    assert 0 < midway["progress"] < 1, midway
    assert midway["data"]["slept_ms"] > 0
    job = await settled(http, job_id, {"completed"})
    took = ids.parse_ts(job["completed_at"]) - ids.parse_ts(running["started_at"])
    assert 1500 <= took < 4000, took
    assert job["result"] == {"slept_ms": 1500}
    final = (await http.get(f"/ojs/v1/jobs/{job_id}/progress")).json()
    assert final["progress"] == 1.0


async def test_timeout_is_stopped_by_its_timeout_and_frees_its_worker_slot(http):
    # One more job than the worker has slots: the last can only start if the worker really
    # stopped the handlers it timed out (the server alone would free no slot).
    job_ids = [await push(http, "test.timeout", timeout_ms=500, retry={"max_attempts": 1})
               for _ in range(CONCURRENCY + 1)]
    for job_id in job_ids:
        job = await settled(http, job_id, {"discarded"}, timeout=20)
        assert job["attempt"] == 1
        assert job["error"]["code"] == "timeout", job["error"]


async def test_produce_returns_a_configurable_result(http):
    configured = await settled(http, await push(http, "test.produce", [{"answer": 42}]),
                               {"completed"})
    assert configured["result"] == {"answer": 42}
    default = await settled(http, await push(http, "test.produce"), {"completed"})
    assert default["result"] == {"produced": True}


async def test_noop_succeeds_with_no_result(http):
    job = await settled(http, await push(http, "test.noop", ["ignored"]), {"completed"})
    assert "result" not in job
    assert "error" not in job


async def test_panic_crashes_the_worker_and_the_job_returns_after_its_visibility_timeout(
        gateway, worker_factory):
    queue = "panics"
    worker = worker_factory([gateway.url], [queue], OJS_POLL_INTERVAL_S="0.1")
    async with httpx.AsyncClient(base_url=gateway.url, timeout=10) as http:
        job_id = await push(http, "test.panic", queue=queue, visibility_timeout_ms=2000)
        assert await asyncio.to_thread(worker.wait, 15) == 70  # the process crashed
        crashed = await info(http, job_id)
        assert crashed["state"] == "active"  # neither acknowledged nor failed
        started = ids.parse_ts(crashed["started_at"])
        job = await settled(http, job_id, {"available"}, timeout=10)
        back = time.time() * 1000
        assert back - started >= 2000 - 100, "back before its visibility timeout"
        assert back - started < 2000 + 1500, "back much later than its visibility timeout"
        assert [e["code"] for e in job["errors"]] == ["visibility_timeout"]
        fetched = (await http.post("/ojs/v1/workers/fetch", json={
            "queues": [queue], "worker_id": "rescuer"})).json()["jobs"]
        assert [(j["id"], j["attempt"]) for j in fetched] == [(job_id, 2)]


async def test_heartbeats_keep_a_short_lease_alive_while_the_handler_runs(http):
    # 3 s of work on a 1 s lease; the worker's regular beat is every 5 s.
    job_id = await push(http, "test.slow", [3000], visibility_timeout_ms=1000)
    job = await settled(http, job_id, {"completed"}, timeout=20)
    assert job["attempt"] == 1, "the lease ran out and the job ran again"
    assert "errors" not in job or job["errors"] == []
