"""Worker processes under signals and server directives (ojs-graceful-shutdown.md §4-§5).

SIGTERM/SIGINT drain (running jobs get the grace period, the rest is handed back at once), a
second signal exits at once, SIGKILL leaves jobs to their visibility timeout, SIGTSTP/SIGCONT
quiet and resume, and the gateway's `quiet`/`terminate` heartbeat answers are obeyed.
"""

from __future__ import annotations

import asyncio
import signal
import time

import httpx
import nats
import orjson
import pytest

from ojs_nats.storage.names import Names
from ojs_nats.storage.workers import worker_key

#: A lease long enough that a job coming back early can only have been handed back.
LONG_LEASE_MS = 120_000


async def push(http: httpx.AsyncClient, queue: str, job_type: str, args: list | None = None,
               **options) -> str:
    response = await http.post("/ojs/v1/jobs", json={
        "type": job_type, "args": args or [], "options": {"queue": queue, **options}})
    assert response.status_code == 201, response.text
    return response.json()["job"]["id"]


async def state_of(http: httpx.AsyncClient, job_id: str) -> dict:
    return (await http.get(f"/ojs/v1/jobs/{job_id}")).json()["job"]


async def wait_states(http: httpx.AsyncClient, job_ids: list[str], states: set[str],
                      timeout: float = 10.0) -> list[dict]:
    deadline = time.monotonic() + timeout
    while True:
        jobs = [await state_of(http, j) for j in job_ids]
        if all(j["state"] in states for j in jobs):
            return jobs
        assert time.monotonic() < deadline, [j["state"] for j in jobs]
        await asyncio.sleep(0.05)


async def registry_entry(nats_url: str, namespace: str, worker_id: str) -> dict:
    """The gateway's record of a worker (KV `<NS>_WORKERS`), read straight from NATS."""
    nc = await nats.connect(nats_url)
    try:
        kv = await nc.jetstream().key_value(Names(namespace).workers_bucket)
        return orjson.loads((await kv.get(worker_key(worker_id))).value)
    finally:
        await nc.close()


async def wait_logged(worker, text: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while text not in worker.log_text():
        assert time.monotonic() < deadline, f"the worker never logged {text!r}"
        await asyncio.sleep(0.05)


async def exit_status(worker, timeout: float) -> tuple[int, float]:
    """(exit status, monotonic time of the exit) of a worker process."""
    deadline = time.monotonic() + timeout
    while worker.process.poll() is None:
        assert time.monotonic() < deadline, "the worker did not exit"
        await asyncio.sleep(0.01)
    return worker.process.returncode, time.monotonic()


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT])
async def test_stop_signal_finishes_jobs_in_grace_and_hands_back_the_rest_at_once(
        nats_server, gateway_factory, worker_factory, stop_signal):
    gateway = gateway_factory()
    queue = "drain"
    worker = worker_factory([gateway.url], [queue], OJS_CONCURRENCY="4",
                            OJS_SHUTDOWN_GRACE_PERIOD_S="2", OJS_POLL_INTERVAL_S="0.1")
    async with httpx.AsyncClient(base_url=gateway.url, timeout=10) as http:
        durations = [1000, 1500, 6000, 9000]
        job_ids = [await push(http, queue, "test.slow", [ms], visibility_timeout_ms=LONG_LEASE_MS)
                   for ms in durations]
        await wait_states(http, job_ids, {"active"})
        await asyncio.sleep(0.2)  # fetched is not started: let the handlers begin

        signalled = time.monotonic()
        worker.signal(stop_signal)
        status, exited = await exit_status(worker, timeout=15)
        assert status == 0, worker.log_text()
        assert 2.0 - 0.1 <= exited - signalled < 2.0 + 2.5, exited - signalled

        # Another worker gets the unfinished jobs at once, not after their 120 s lease.
        handed_back: list[dict] = []
        while len(handed_back) < 2 and time.monotonic() - exited < 1.0:
            handed_back += (await http.post("/ojs/v1/workers/fetch", json={
                "queues": [queue], "count": 4, "worker_id": "second"})).json()["jobs"]
        fetched_after = time.monotonic() - exited
        assert sorted(j["id"] for j in handed_back) == sorted(job_ids[2:]), fetched_after
        assert fetched_after < 1.0
        assert all(j["attempt"] == 2 for j in handed_back)

        finished = [await state_of(http, j) for j in job_ids[:2]]
        assert [j["state"] for j in finished] == ["completed", "completed"]
        assert [j["result"]["slept_ms"] for j in finished] == durations[:2]
    # Deregistered: the last heartbeat said `terminate`, with no jobs left.
    entry = await registry_entry(nats_server.url, gateway.namespace, worker.worker_id)
    assert (entry["reported_state"], entry["active_jobs"]) == ("terminate", 0)
    assert entry["queues"] == [queue]
    log = worker.log_text()
    assert log.count("handed back") >= 2
    assert "Traceback" not in log


async def test_a_sync_handler_that_ignores_the_stop_cannot_hold_the_worker_past_its_grace(
        gateway_factory, worker_factory):
    gateway = gateway_factory()
    queue = "blocking"
    worker = worker_factory([gateway.url], [queue], target="tests.system.blocking_worker:worker",
                            OJS_SHUTDOWN_GRACE_PERIOD_S="1", OJS_POLL_INTERVAL_S="0.1")
    async with httpx.AsyncClient(base_url=gateway.url, timeout=10) as http:
        quick = await push(http, queue, "blocking.sleep", [0.3])
        stuck = await push(http, queue, "blocking.sleep", [60], visibility_timeout_ms=LONG_LEASE_MS)
        await wait_states(http, [quick, stuck], {"active"})
        signalled = time.monotonic()
        worker.signal(signal.SIGTERM)
        status, exited = await exit_status(worker, timeout=10)
        assert status == 0
        assert exited - signalled < 1.0 + 2.0
        assert (await state_of(http, quick))["result"] == {"slept_s": 0.3}
        assert (await state_of(http, stuck))["state"] == "available"


async def test_a_second_stop_signal_exits_at_once(gateway_factory, worker_factory):
    gateway = gateway_factory()
    queue = "impatient"
    worker = worker_factory([gateway.url], [queue], OJS_SHUTDOWN_GRACE_PERIOD_S="60",
                            OJS_POLL_INTERVAL_S="0.1")
    async with httpx.AsyncClient(base_url=gateway.url, timeout=10) as http:
        job_id = await push(http, queue, "test.slow", [30_000], visibility_timeout_ms=LONG_LEASE_MS)
        await wait_states(http, [job_id], {"active"})
        worker.signal(signal.SIGTERM)
        await asyncio.sleep(0.5)
        assert worker.process.poll() is None, "the first SIGTERM must drain, not exit"
        again = time.monotonic()
        worker.signal(signal.SIGTERM)
        status, exited = await exit_status(worker, timeout=5)
        assert exited - again < 1.0
        assert status == 128 + signal.SIGTERM
        # Nothing was handed back: the job waits for its lease, like after a crash.
        assert (await state_of(http, job_id))["state"] == "active"


async def test_sigkill_leaves_the_job_to_its_visibility_timeout(gateway_factory, worker_factory):
    gateway = gateway_factory()
    queue = "killed"
    worker = worker_factory([gateway.url], [queue], OJS_POLL_INTERVAL_S="0.1")
    async with httpx.AsyncClient(base_url=gateway.url, timeout=10) as http:
        job_id = await push(http, queue, "test.slow", [30_000], visibility_timeout_ms=2000)
        await wait_states(http, [job_id], {"active"})
        await asyncio.sleep(2.5)  # heartbeats keep it leased past its 2 s timeout
        assert (await state_of(http, job_id))["state"] == "active"
        worker.kill()
        killed = time.monotonic()
        await asyncio.sleep(0.5)  # the last beat was at most ~0.7 s ago: the lease still holds
        assert (await state_of(http, job_id))["state"] == "active"
        job = (await wait_states(http, [job_id], {"available"}, timeout=5))[0]
        assert time.monotonic() - killed < 2.0 + 1.5
        assert job["errors"][-1]["code"] == "visibility_timeout"


async def test_a_sigkilled_worker_is_declared_dead_and_its_job_recovered_before_its_lease_ends(
        gateway_factory, worker_factory):
    # ojs-worker-protocol.md §10: the job comes back after the worker heartbeat timeout (1.5 s),
    # not after its 60 s lease.
    gateway = gateway_factory(OJS_WORKER_HEARTBEAT_TIMEOUT_MS="1500")
    queue = "killed-dead"
    worker = worker_factory([gateway.url], [queue], OJS_POLL_INTERVAL_S="0.1",
                            OJS_HEARTBEAT_INTERVAL_S="0.3")
    async with httpx.AsyncClient(base_url=gateway.url, timeout=10) as http:
        job_id = await push(http, queue, "test.slow", [30_000], visibility_timeout_ms=60_000)
        await wait_states(http, [job_id], {"active"})
        await asyncio.sleep(1.0)  # a beat listing the job has landed
        worker.kill()
        killed = time.monotonic()
        job = (await wait_states(http, [job_id], {"available"}, timeout=6))[0]
        assert time.monotonic() - killed < 1.5 + 1.5
        assert job["errors"][-1]["code"] == "worker_death"
        workers = (await http.get("/ojs/v1/admin/workers")).json()
        assert [w["state"] for w in workers["items"]] == ["dead"]
        assert workers["items"][0]["recovered_jobs"] == [job_id]


async def test_sigtstp_quiets_the_worker_and_sigcont_resumes_it(gateway_factory, worker_factory):
    gateway = gateway_factory()
    queue = "paused-worker"
    worker = worker_factory([gateway.url], [queue], OJS_POLL_INTERVAL_S="0.1")
    async with httpx.AsyncClient(base_url=gateway.url, timeout=10) as http:
        worker.signal(signal.SIGTSTP)
        await asyncio.sleep(0.5)
        job_id = await push(http, queue, "test.noop")
        await asyncio.sleep(1.5)
        assert (await state_of(http, job_id))["state"] == "available"
        worker.signal(signal.SIGCONT)
        await wait_states(http, [job_id], {"completed"}, timeout=5)
        worker.signal(signal.SIGTERM)
        assert (await exit_status(worker, timeout=10))[0] == 0


async def test_quiet_directive_stops_fetching_and_running_jobs_still_finish(
        gateway_factory, worker_factory):
    gateway = gateway_factory()
    queue = "quieted"
    worker = worker_factory([gateway.url], [queue], OJS_POLL_INTERVAL_S="0.1",
                            OJS_HEARTBEAT_INTERVAL_S="0.3")
    async with httpx.AsyncClient(base_url=gateway.url, timeout=10) as http:
        # The gateway answers a heartbeat listing this job with `quiet` (its test hook).
        slow = await push(http, queue, "test.slow", [1500], metadata={"test_directive": "quiet"})
        await wait_states(http, [slow], {"active"})
        await wait_logged(worker, "asked this worker to be quiet")
        later = await push(http, queue, "test.noop")
        await wait_states(http, [slow], {"completed"}, timeout=10)
        await asyncio.sleep(1.0)
        assert (await state_of(http, later))["state"] == "available"
        assert worker.process.poll() is None, "quiet is not terminate"
        worker.signal(signal.SIGTERM)
        assert (await exit_status(worker, timeout=10))[0] == 0


async def test_terminate_directive_drains_the_worker_and_it_exits_cleanly(
        gateway_factory, worker_factory):
    gateway = gateway_factory()
    queue = "terminated"
    worker = worker_factory([gateway.url], [queue], OJS_POLL_INTERVAL_S="0.1",
                            OJS_HEARTBEAT_INTERVAL_S="0.3", OJS_SHUTDOWN_GRACE_PERIOD_S="10")
    async with httpx.AsyncClient(base_url=gateway.url, timeout=10) as http:
        job_id = await push(http, queue, "test.slow", [1500],
                            metadata={"test_directive": "terminate"})
        status, _ = await exit_status(worker, timeout=15)
        assert status == 0
        assert (await state_of(http, job_id))["state"] == "completed"
    assert "asked this worker to terminate" in worker.log_text()
