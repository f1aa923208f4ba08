"""`ojs_nats.worker.Worker` used as a library, in this process, against a gateway process:
sync and async handlers, middleware around both, results, errors, and `stop()`."""

from __future__ import annotations

import asyncio
import threading
import time

import httpx

from ojs_nats.worker import Discard, JobContext, Worker, WorkerSettings


async def test_handlers_and_middleware_run_and_stop_drains(gateway_factory):
    gateway = gateway_factory()
    worker = Worker(WorkerSettings(urls=(gateway.url,), queues=("lib",), concurrency=3,
                                   poll_interval_s=0.1, grace_period_s=5))
    calls: list[str] = []
    threads: dict[str, str] = {}

    @worker.use
    async def outer(ctx: JobContext, call_next):
        calls.append(f"outer>{ctx.type}")
        result = await call_next()
        calls.append(f"outer<{ctx.type}")
        return result

    @worker.use
    async def stamp(ctx: JobContext, call_next):
        result = await call_next()
        return {"wrapped": result, "attempt": ctx.attempt} if ctx.type == "lib.sync" else result

    @worker.register("lib.sync")
    def blocking(ctx: JobContext) -> int:
        threads["sync"] = threading.current_thread().name
        time.sleep(0.05)
        return sum(ctx.args)

    @worker.register("lib.async")
    async def cooperative(ctx: JobContext) -> None:
        threads["async"] = threading.current_thread().name
        ctx.set_result({"via": "set_result"})

    @worker.register("lib.refuse")
    async def refuse(ctx: JobContext) -> None:
        raise Discard("never valid", details={"reason": "test"})

    assert worker.middleware.names() == ["log_execution", "enforce_timeout", "outer", "stamp"]
    running = asyncio.create_task(worker.start())
    async with httpx.AsyncClient(base_url=gateway.url, timeout=10) as http:
        ids = {}
        for job_type, args in (("lib.sync", [1, 2, 3]), ("lib.async", []), ("lib.refuse", []),
                               ("lib.unknown", [])):
            response = await http.post("/ojs/v1/jobs", json={
                "type": job_type, "args": args,
                "options": {"queue": "lib", "retry": {"max_attempts": 1}}})
            ids[job_type] = response.json()["job"]["id"]
        jobs = {}
        deadline = time.monotonic() + 15
        while len(jobs) < len(ids):
            assert time.monotonic() < deadline, jobs
            for job_type, job_id in ids.items():
                job = (await http.get(f"/ojs/v1/jobs/{job_id}")).json()["job"]
                if job["state"] in ("completed", "discarded"):
                    jobs[job_type] = job
            await asyncio.sleep(0.05)

    assert jobs["lib.sync"]["result"] == {"wrapped": 6, "attempt": 1}
    assert jobs["lib.async"]["result"] == {"via": "set_result"}
    refused = jobs["lib.refuse"]["error"]
    assert (jobs["lib.refuse"]["state"], refused["code"], refused["retryable"]) == (
        "discarded", "discard", False)
    assert refused["details"]["reason"] == "test"
    assert jobs["lib.unknown"]["error"]["code"] == "unknown_job_type"
    assert threads["sync"].startswith("ojs-job")  # the thread pool, not the event loop
    assert threads["async"] == threading.main_thread().name
    assert calls.count("outer>lib.sync") == calls.count("outer<lib.sync") == 1

    worker.stop()
    assert await asyncio.wait_for(running, 10) == 0
