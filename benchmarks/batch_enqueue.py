"""Batch-enqueue throughput: 100 requests of 1,000 jobs to POST /ojs/v1/jobs/batch.

Starts its own nats-server and one gateway process (or uses `--url`), sends the requests one
after another from one client, and prints jobs/s and the per-request latency (p50/p99), then one
JSON line with the same figures. A benchmark, not a test: it never fails on a slow machine.

    .venv/bin/python benchmarks/batch_enqueue.py [--requests 100] [--batch 1000] [--url URL]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

from ojs_nats.embedded import NatsServer, free_port

ROOT = Path(__file__).resolve().parent.parent


@contextlib.contextmanager
def local_gateway() -> Iterator[str]:
    """A nats-server and a gateway process in a temporary directory, stopped afterwards."""
    with (
        tempfile.TemporaryDirectory(prefix="ojs-bench-") as tmp,
        NatsServer(Path(tmp) / "nats", name="ojs-bench") as nats,
    ):
        port = free_port()
        env = {
            **os.environ,
            "NATS_URL": nats.url,
            "OJS_PORT": str(port),
            "OJS_NAMESPACE": "bench",
            "OJS_LOG_LEVEL": "warning",
        }
        log = (Path(tmp) / "gateway.log").open("wb")
        gateway = subprocess.Popen(
            [sys.executable, "-m", "ojs_nats.cli", "serve"],
            env=env,
            stdout=log,
            stderr=log,
            cwd=ROOT,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                with contextlib.suppress(httpx.HTTPError):
                    if httpx.get(url + "/ready", timeout=1).status_code == 200:
                        break
                time.sleep(0.05)
            yield url
        finally:
            gateway.terminate()
            gateway.wait(15)


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


async def run(url: str, requests: int, batch: int) -> dict[str, object]:
    async with httpx.AsyncClient(base_url=url, timeout=60) as http:
        warm = [{"type": "bench.warm", "args": [], "options": {"queue": "bench-warm"}}] * 10
        (await http.post("/ojs/v1/jobs/batch", json={"jobs": warm})).raise_for_status()
        latencies: list[float] = []
        started = time.perf_counter()
        for r in range(requests):
            jobs = [
                {"type": "bench.batch", "args": [r, n], "options": {"queue": "bench"}}
                for n in range(batch)
            ]
            t0 = time.perf_counter()
            response = await http.post("/ojs/v1/jobs/batch", json={"jobs": jobs})
            latencies.append((time.perf_counter() - t0) * 1000)
            if response.status_code != 201:
                raise SystemExit(f"request {r}: {response.status_code} {response.text[:300]}")
        elapsed = time.perf_counter() - started
        depth = (await http.get("/ojs/v1/queues/bench/stats")).json()["queue"]["available"]
    return {
        "benchmark": "batch_enqueue",
        "requests": requests,
        "jobs_per_request": batch,
        "jobs": requests * batch,
        "seconds": round(elapsed, 3),
        "jobs_per_s": round(requests * batch / elapsed),
        "request_ms_p50": round(statistics.median(latencies), 1),
        "request_ms_p99": round(percentile(latencies, 0.99), 1),
        "request_ms_max": round(max(latencies), 1),
        "queue_available_after": depth,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=100)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--url", help="an existing gateway (default: start one)")
    args = parser.parse_args()
    with contextlib.ExitStack() as stack:
        url = args.url or stack.enter_context(local_gateway())
        result = asyncio.run(run(url, args.requests, args.batch))
    print(
        f"batch enqueue: {result['requests']} requests x {result['jobs_per_request']} jobs "
        f"in {result['seconds']} s"
    )
    print(f"  throughput  {result['jobs_per_s']} jobs/s")
    print(
        f"  per request p50 {result['request_ms_p50']} ms, p99 {result['request_ms_p99']} ms, "
        f"max {result['request_ms_max']} ms"
    )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
