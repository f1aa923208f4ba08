"""`ojs-nats worker --direct`: a worker process that runs FETCH, ACK, FAIL and BEAT through the
service layer straight to JetStream, beside a gateway (which serves clients and runs the timers).

What a user sees must not differ from an HTTP worker: results, retries (the gateway's retry
timer brings the job back to the direct worker), events naming the worker, the worker registry
and the SIGTERM drain.
"""

from __future__ import annotations

import asyncio
import signal
import time

import httpx

from tests.system.test_worker_shutdown import (
    LONG_LEASE_MS,
    exit_status,
    push,
    registry_entry,
    state_of,
    wait_states,
)


def direct_worker(worker_factory, gateway, queue: str, **env: str):
    # No gateway URL: a direct worker must not need one. NATS_URL and the namespace are the
    # gateway's server settings, as a deployment would share them.
    return worker_factory(["http://127.0.0.1:9"], [queue], args=["--direct"],
                          NATS_URL=gateway.nats_url, OJS_NAMESPACE=gateway.namespace, **env)


async def test_jobs_run_retry_and_report_as_with_an_http_worker(gateway_factory, worker_factory):
    gateway = gateway_factory()
    queue = "direct"
    worker = direct_worker(worker_factory, gateway, queue, OJS_CONCURRENCY="8")
    assert "via JetStream directly" in worker.log_text()
    async with httpx.AsyncClient(base_url=gateway.url, timeout=10) as http:
        echo = await push(http, queue, "test.echo", [1, "two"])
        retried = await push(http, queue, "test.fail_once",
                             retry={"max_attempts": 3, "initial_interval": "PT0.1S"})
        many = [await push(http, queue, "test.noop", [i]) for i in range(50)]
        jobs = await wait_states(http, [echo, retried, *many], {"completed", "discarded"},
                                 timeout=20)
        assert {j["state"] for j in jobs} == {"completed"}
        assert jobs[0]["result"] == [1, "two"]
        assert (jobs[1]["attempt"], jobs[1]["result"]) == (2, {"attempt": 2})
        assert jobs[1]["errors"][0]["message"].startswith("test.fail_once fails attempt 1")

        events = (await http.get("/ojs/v1/events", params={
            "types": "job.started", "queues": queue, "limit": 100})).json()["events"]
        started = [e for e in events if e.get("subject") == echo]
        assert started, events[:2]
        assert started[0]["data"]["worker_id"] == worker.worker_id

        listed = (await http.get(f"/ojs/v1/admin/workers/{worker.worker_id}")).json()
        assert listed["worker"]["state"] == "running", listed
        assert listed["worker"]["queues"] == [queue]

    worker.signal(signal.SIGTERM)
    status, _ = await exit_status(worker, timeout=15)
    assert status == 0, worker.log_text()
    assert "Traceback" not in worker.log_text()


async def test_sigterm_hands_back_what_still_runs_at_once(nats_server, gateway_factory,
                                                          worker_factory):
    gateway = gateway_factory()
    queue = "direct-drain"
    worker = direct_worker(worker_factory, gateway, queue, OJS_CONCURRENCY="2",
                           OJS_SHUTDOWN_GRACE_PERIOD_S="1")
    async with httpx.AsyncClient(base_url=gateway.url, timeout=10) as http:
        job_ids = [await push(http, queue, "test.slow", [ms], visibility_timeout_ms=LONG_LEASE_MS)
                   for ms in (300, 20_000)]
        await wait_states(http, job_ids, {"active", "completed"})
        await asyncio.sleep(0.2)
        worker.signal(signal.SIGTERM)
        status, exited = await exit_status(worker, timeout=15)
        assert status == 0, worker.log_text()

        finished, unfinished = [await state_of(http, j) for j in job_ids]
        assert finished["state"] == "completed"
        # Handed back, not left to its 120 s lease: another worker can take it now.
        assert unfinished["state"] == "available", unfinished
        fetched = (await http.post("/ojs/v1/workers/fetch", json={
            "queues": [queue], "count": 1, "worker_id": "second"})).json()["jobs"]
        assert [j["id"] for j in fetched] == [job_ids[1]]
        assert time.monotonic() - exited < 5
    entry = await registry_entry(nats_server.url, gateway.namespace, worker.worker_id)
    assert (entry["reported_state"], entry["active_jobs"]) == ("terminate", 0)
