"""S5: many delayed jobs on durable timers: how late each becomes available, and what the
timer load costs unrelated traffic.

Starts its own nats-server and gateway processes, measures unrelated push+fetch+ack cycles on an
idle system, schedules N delayed jobs spread over a window, measures the same unrelated traffic
while they fire, then reads every promotion (`job.enqueued` event) and prints lateness p50/p99/
max against the requested time. Prints a table and one JSON line. Not a test: it never fails on
a slow machine.

    python benchmarks/delayed_jobs.py [--jobs 100000] [--spread 60] [--gateways 2]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ojs_nats.config import Settings  # noqa: E402
from ojs_nats.embedded import NatsServer  # noqa: E402
from ojs_nats.model import envelope, ids  # noqa: E402
from ojs_nats.service import push  # noqa: E402
from ojs_nats.service.context import Context  # noqa: E402
from ojs_nats.storage import Storage  # noqa: E402
from tests.support import GatewayProcess  # noqa: E402


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


async def unrelated_load(urls: list[str], seconds: float, workers: int = 16) -> dict[str, float]:
    """Push, fetch and ack unrelated jobs in a loop; cycles per second and cycle latency."""
    done, latencies = 0, []
    stop = time.monotonic() + seconds

    async def worker(index: int) -> None:
        nonlocal done
        async with httpx.AsyncClient(base_url=urls[index % len(urls)], timeout=30) as http:
            while time.monotonic() < stop:
                started = time.perf_counter()
                await http.post(
                    "/ojs/v1/jobs",
                    json={"type": "bench.unrelated", "args": [], "options": {"queue": "unrelated"}},
                )
                jobs = (
                    await http.post("/ojs/v1/workers/fetch", json={"queues": ["unrelated"]})
                ).json()["jobs"]
                for job in jobs:
                    await http.post("/ojs/v1/workers/ack", json={"job_id": job["id"]})
                latencies.append((time.perf_counter() - started) * 1000)
                done += 1

    began = time.monotonic()
    await asyncio.gather(*(worker(i) for i in range(workers)))
    elapsed = time.monotonic() - began
    return {
        "cycles_per_s": done / elapsed,
        "p50_ms": pct(latencies, 0.5),
        "p99_ms": pct(latencies, 0.99),
    }


async def schedule_jobs(
    settings: Settings, count: int, start_ms: int, spread_ms: int
) -> tuple[dict[str, int], float]:
    """Create `count` delayed jobs straight through the service layer (no HTTP), concurrently."""
    storage = await Storage.open(settings, name="bench-scheduler")
    ctx = Context(storage, settings)
    due: dict[str, int] = {}
    began = time.monotonic()
    queue: asyncio.Queue[int] = asyncio.Queue()
    for n in range(count):
        queue.put_nowait(n)

    async def creator() -> None:
        while not queue.empty():
            queue.get_nowait()
            at = start_ms + random.randrange(spread_ms)
            now = ids.now_ms()
            body = {
                "type": "bench.delayed",
                "args": [],
                "options": {"queue": "delayed", "scheduled_at": ids.format_ts(at)},
            }
            submission = envelope.parse_submission(body, now)
            await push.create(ctx, submission, now)
            due[submission.id] = at

    await asyncio.gather(*(creator() for _ in range(400)))
    elapsed = time.monotonic() - began
    await storage.close()
    return due, count / elapsed


async def promotions(url: str, due: dict[str, int]) -> list[float]:
    """Lateness (ms) of every promotion to available, from the `job.enqueued` events."""
    lateness: list[float] = []
    after = "0"
    async with httpx.AsyncClient(base_url=url, timeout=60) as http:
        while True:
            page = (
                await http.get(
                    "/ojs/v1/events",
                    params={
                        "types": "job.enqueued",
                        "queues": "delayed",
                        "limit": 1000,
                        "after": after,
                    },
                )
            ).json()
            for event in page["events"]:
                at = due.get(event["subject"])
                if at is not None:
                    lateness.append(ids.parse_ts(event["time"]) - at)
            after = page["cursor"]
            if not page["has_more"] and not page["events"]:
                return lateness


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=100_000)
    parser.add_argument("--spread", type=int, default=60, help="seconds the due times span")
    parser.add_argument("--gateways", type=int, default=2)
    parser.add_argument("--load-seconds", type=float, default=20)
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="ojs-bench-"))
    server = NatsServer(workdir / "nats", name="bench").start()
    namespace = "bench" + os.urandom(3).hex()
    gateways = [
        GatewayProcess(server.url, namespace, log_dir=workdir).start() for _ in range(args.gateways)
    ]
    urls = [g.url for g in gateways]
    settings = Settings(nats_urls=(server.url,), namespace=namespace)
    try:
        idle = await unrelated_load(urls, args.load_seconds)
        print(f"idle: {idle['cycles_per_s']:.0f} push+fetch+ack cycles/s", flush=True)
        lead_ms = max(30_000, args.jobs // 3)  # time to create them before the first is due
        start_ms = ids.now_ms() + lead_ms
        due, create_rate = await schedule_jobs(settings, args.jobs, start_ms, args.spread * 1000)
        print(f"scheduled {len(due)} delayed jobs at {create_rate:.0f}/s", flush=True)
        wait = (start_ms - ids.now_ms()) / 1000
        if wait < 0:
            print(f"warning: scheduling overran the lead by {-wait:.1f}s", flush=True)
        await asyncio.sleep(max(0.0, wait) + 5)
        loaded = await unrelated_load(urls, args.load_seconds)
        print(f"while firing: {loaded['cycles_per_s']:.0f} cycles/s", flush=True)
        remaining = (start_ms + args.spread * 1000 - ids.now_ms()) / 1000
        await asyncio.sleep(max(0.0, remaining) + 10)
        lateness = await promotions(urls[0], due)
    finally:
        for gateway in gateways:
            gateway.stop()
        server.stop()

    result = {
        "benchmark": "S5 delayed jobs",
        "jobs": args.jobs,
        "spread_s": args.spread,
        "gateways": args.gateways,
        "promoted": len(lateness),
        "lateness_ms": {
            "p50": pct(lateness, 0.5),
            "p99": pct(lateness, 0.99),
            "max": max(lateness) if lateness else None,
            "mean": statistics.fmean(lateness) if lateness else None,
        },
        "schedule_rate_per_s": round(create_rate),
        "unrelated_idle_cycles_per_s": round(idle["cycles_per_s"]),
        "unrelated_loaded_cycles_per_s": round(loaded["cycles_per_s"]),
        "unrelated_ratio": round(loaded["cycles_per_s"] / idle["cycles_per_s"], 3),
        "unrelated_p99_ms": {
            "idle": round(idle["p99_ms"], 1),
            "loaded": round(loaded["p99_ms"], 1),
        },
    }
    print()
    print(f"{'promoted':<28}{len(lateness)} of {args.jobs}")
    print(
        f"{'lateness p50 / p99 / max':<28}{result['lateness_ms']['p50']:.0f} / "
        f"{result['lateness_ms']['p99']:.0f} / {result['lateness_ms']['max']:.0f} ms"
    )
    print(
        f"{'unrelated idle / loaded':<28}{idle['cycles_per_s']:.0f} / "
        f"{loaded['cycles_per_s']:.0f} cycles/s (ratio {result['unrelated_ratio']})"
    )
    print(json.dumps(result))


if __name__ == "__main__":
    asyncio.run(main())
