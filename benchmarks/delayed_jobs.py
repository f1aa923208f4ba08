"""S5: many delayed jobs on durable timers: how late each becomes available, and what the
timer load costs unrelated traffic.

Starts its own nats-server and gateway processes (or uses --url), measures the raw JetStream
ceiling, then unrelated push + fetch + ack cycles on an idle system; schedules --jobs delayed
jobs (/jobs/batch, 1,000 per request) with due times spread over --spread seconds; measures
the same unrelated traffic while they wait (all scheduled, none due yet: what holding them
costs) and again while they fire (what promoting ~jobs/spread per second costs); then reads
every promotion (`job.enqueued` event) and prints lateness p50/p99/max against the requested
time, then one JSON line.
Jobs that were created less than a second before they were due (a slow machine) are left
out of the lateness figures and counted.

    .venv/bin/python benchmarks/delayed_jobs.py [--jobs 100000] [--spread 60] [--gateways 2]
        [--load-seconds 20] [--quick]
"""

from __future__ import annotations

import asyncio
import random
import statistics
import time
from datetime import UTC, datetime
from typing import Any

import common
import orjson

QUEUE, UNRELATED = "delayed", "unrelated"
TARGET = "p99 lateness < 250 ms; unrelated while waiting within 10% of idle"


def iso(ms: int) -> str:
    moment = datetime.fromtimestamp(ms / 1000, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


def epoch_ms(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp() * 1000


def now_ms() -> int:
    return int(time.time() * 1000)


class UnrelatedClients:
    """The unrelated load's connections, opened once and kept alive between its phases.

    With several gateway processes, a connection stays with the process that accepted it, and
    how 16 connections fall over two processes moved the figure by up to 30% from one set of
    connections to the next (one process: ~1,000 cycles/s; split: ~550-750). Comparing
    phases is fair only when each meets the same split, so every phase uses these.
    """

    KEEP_ALIVE_S = 2.0  # under uvicorn's 5 s keep-alive

    def __init__(self, urls: list[str], count: int = 16) -> None:
        self.conns = common.connections(urls, count)
        self._resting: asyncio.Task[None] | None = None

    async def _keep_alive(self) -> None:
        while True:
            await asyncio.sleep(self.KEEP_ALIVE_S)
            await asyncio.gather(
                *(conn.get("/ojs/manifest") for conn in self.conns), return_exceptions=True
            )

    async def load(self, seconds: float) -> dict[str, Any]:
        await self._stop_keeping_alive()
        try:
            return await unrelated_load(self.conns, seconds)
        finally:
            self._resting = asyncio.create_task(self._keep_alive())

    async def close(self) -> None:
        await self._stop_keeping_alive()
        common.close_all(self.conns)

    async def _stop_keeping_alive(self) -> None:
        if self._resting is not None:
            self._resting.cancel()
            await asyncio.gather(self._resting, return_exceptions=True)
            self._resting = None


async def unrelated_load(conns: list[common.Http], seconds: float) -> dict[str, Any]:
    """Push, fetch and ack unrelated jobs in a loop: cycles per second and cycle latency."""
    push = orjson.dumps(common.job("bench.unrelated", UNRELATED))
    done, errors, latencies = 0, 0, []
    deadline = common.Deadline(seconds)

    async def client(index: int, conn: common.Http) -> None:
        nonlocal done, errors
        fetch = orjson.dumps({"queues": [UNRELATED], "worker_id": f"unrelated-{index}"})
        while not deadline.passed:
            began = time.perf_counter()
            try:
                await conn.request("POST", "/ojs/v1/jobs", push)
                reply = await conn.request("POST", "/ojs/v1/workers/fetch", fetch)
                for job in (reply.json() or {}).get("jobs") or []:
                    ack = orjson.dumps({"job_id": job["id"]})
                    await conn.request("POST", "/ojs/v1/workers/ack", ack)
            except (common.HttpError, ValueError):
                errors += 1
                continue
            latencies.append((time.perf_counter() - began) * 1000)
            done += 1

    began = time.perf_counter()
    await asyncio.gather(*(client(i, c) for i, c in enumerate(conns)))
    return {
        "cycles_per_s": common.rate(done, time.perf_counter() - began),
        "cycle_ms": common.latency_ms(latencies),
        "errors": errors,
    }


async def schedule(
    urls: list[str], count: int, start_ms: int, spread_ms: int, deadline: common.Deadline
) -> tuple[dict[str, float], int, float]:
    """Create `count` delayed jobs with /jobs/batch (4 requests in flight). Returns the due
    time of each job created in time (>= 1 s before due), how many were not, and the rate."""
    due: dict[str, float] = {}
    late = 0
    sizes = [min(1000, count - n) for n in range(0, count, 1000)]

    async def sender(conn: common.Http) -> None:
        nonlocal late
        while sizes and not deadline.passed:
            size = sizes.pop()
            jobs = []
            for _ in range(size):
                job = common.job("bench.delayed", QUEUE)
                job["options"]["scheduled_at"] = iso(start_ms + random.randrange(spread_ms))
                jobs.append(job)
            reply = await conn.post("/ojs/v1/jobs/batch", {"jobs": jobs})
            if reply.status != 201:
                raise common.HttpError(f"batch: HTTP {reply.status} {reply.body[:300]!r}")
            created = now_ms()
            for job in reply.json()["jobs"]:
                at = epoch_ms(job["scheduled_at"])
                if at - created >= 1000:
                    due[job["id"]] = at
                else:
                    late += 1

    conns = common.connections(urls, 4)
    began = time.perf_counter()
    try:
        await asyncio.gather(*(sender(c) for c in conns))
    finally:
        common.close_all(conns)
    return due, late, common.rate(len(due) + late, time.perf_counter() - began)


async def promotions(
    url: str, due: dict[str, float], deadline: common.Deadline
) -> list[tuple[float, float]]:
    """(due time, lateness) in ms of every promotion to available, from `job.enqueued`."""
    lateness: list[tuple[float, float]] = []
    after = "0"
    conn = common.Http(url)
    try:
        while not deadline.passed:
            page = (
                await conn.get(
                    f"/ojs/v1/events?types=job.enqueued&queues={QUEUE}&limit=1000&after={after}"
                )
            ).json()
            for event in page["events"]:
                at = due.get(event["subject"])
                if at is not None:
                    lateness.append((at, epoch_ms(event["time"]) - at))
            after = page["cursor"]
            if not page["has_more"] and not page["events"]:
                break
    finally:
        conn.close()
    return lateness


async def measure(args: Any) -> dict[str, Any]:
    jobs = args.jobs or (2_000 if args.quick else 100_000)
    spread = args.spread or (5 if args.quick else 60)
    load_s = args.load_seconds or (2 if args.quick else 20)
    with common.stack_from(args) as stack:
        common.header(
            f"S5 delayed jobs: {jobs:,} due over {spread} s, {len(stack.urls) or args.gateways} "
            "gateway(s)",
            stack,
            args,
        )
        ceiling = await common.measure_ceiling(stack, args)
        clients = UnrelatedClients(stack.urls)
        idle = await clients.load(load_s)
        common.say(f"idle: {idle['cycles_per_s']:,.0f} unrelated push+fetch+ack cycles/s")
        # time to create them before the first is due (30 s, or 1 s per 3,000 jobs), then to
        # measure the unrelated load while all of them wait
        lead_ms = 3_000 if args.quick else max(30_000, jobs // 3) + int(load_s * 1000) + 2_000
        start_ms = now_ms() + lead_ms
        due, late, create_rate = await schedule(
            stack.urls, jobs, start_ms, spread * 1000, common.Deadline(lead_ms / 1000 + spread)
        )
        common.say(f"scheduled {len(due) + late:,} delayed jobs at {create_rate:,.0f}/s")
        if late:
            common.say(f"   {late:,} created less than 1 s before due: left out of the lateness")
        waiting_s = min(load_s, (start_ms - now_ms()) / 1000 - 1)
        waiting = await clients.load(waiting_s) if waiting_s >= 1 else None
        if waiting is not None:
            common.say(f"while waiting: {waiting['cycles_per_s']:,.0f} cycles/s")
        await asyncio.sleep(max(0.0, (start_ms - now_ms()) / 1000) + min(5, spread / 5))
        with common.CpuMeter(stack.cpu_groups()) as cpu:
            loaded_from = now_ms()
            loaded = await clients.load(load_s)
            loaded_until = now_ms()
        await clients.close()
        common.say(f"while firing: {loaded['cycles_per_s']:,.0f} cycles/s")
        remaining = (start_ms + spread * 1000 - now_ms()) / 1000
        await asyncio.sleep(max(0.0, remaining) + (3 if args.quick else 10))
        promoted = await promotions(stack.urls[0], due, common.Deadline(120))
        lateness = [late for _, late in promoted]
        under_load = [late for at, late in promoted if loaded_from <= at < loaded_until]
        unloaded = [late for at, late in promoted if not loaded_from <= at < loaded_until]
        result = common.base_result("S5 delayed_jobs", stack, args)

    ratio_unrelated = common.ratio(loaded["cycles_per_s"], idle["cycles_per_s"])
    ratio_waiting = common.ratio(waiting["cycles_per_s"], idle["cycles_per_s"]) if waiting else None
    result.update(
        {
            "jobs": jobs,
            "spread_s": spread,
            "measured": len(due),
            "created_late": late,
            "promoted": len(lateness),
            "lateness_ms": {
                **common.latency_ms(lateness),
                "mean": round(statistics.fmean(lateness), 3) if lateness else None,
            },
            # the same, split by whether the job fell due while the unrelated load ran
            "lateness_under_load_ms": common.latency_ms(under_load),
            "lateness_without_load_ms": common.latency_ms(unloaded),
            "schedule_jobs_per_s": create_rate,
            "unrelated": {
                "idle": idle,
                "while_waiting": waiting,
                "while_firing": loaded,
                "ratio_waiting": ratio_waiting,
                "ratio": ratio_unrelated,
            },
            "cpu_pct_while_firing": cpu.result,
            "ceiling": ceiling,
            "ratio": {
                "schedule": {
                    "of": "publish_pipelined_per_s",
                    "value": common.ratio(
                        create_rate, common.ceiling_of(ceiling, "publish_pipelined_per_s")
                    ),
                }
            },
            "complete": len(lateness) == len(due),
        }
    )
    common.say("")
    common.rows(
        [
            ("promoted (of measured jobs)", f"{len(lateness):,} of {len(due):,}"),
            ("lateness p50 / p99 / max", common.fmt_latency(result["lateness_ms"])),
            (
                f"   due under unrelated load ({len(under_load):,})",
                common.fmt_latency(result["lateness_under_load_ms"]),
            ),
            (
                f"   due without it ({len(unloaded):,})",
                common.fmt_latency(result["lateness_without_load_ms"]),
            ),
            (
                "unrelated cycles/s idle / waiting",
                f"{idle['cycles_per_s']:,.0f} / "
                + (f"{waiting['cycles_per_s']:,.0f} " if waiting else "- ")
                + f"(ratio {common.fmt(ratio_waiting)})",
            ),
            (
                "unrelated cycles/s idle / firing",
                f"{idle['cycles_per_s']:,.0f} / {loaded['cycles_per_s']:,.0f} "
                f"(ratio {common.fmt(ratio_unrelated)})",
            ),
            (
                "unrelated cycle p99 idle / firing",
                f"{common.fmt(idle['cycle_ms']['p99'])} / "
                f"{common.fmt(loaded['cycle_ms']['p99'])} ms",
            ),
            ("cpu while firing (% of a core)", common.fmt_cpu(cpu.result)),
            ("issue #9 target", TARGET),
            *common.problems(result),
        ]
    )
    return result


def main() -> None:
    ap = common.parser(__doc__)
    ap.set_defaults(gateways=2)
    ap.add_argument("--jobs", type=int, default=0, help="delayed jobs (100,000)")
    ap.add_argument("--spread", type=int, default=0, help="seconds the due times span (60)")
    ap.add_argument("--load-seconds", type=float, default=0, help="unrelated load phases (20)")
    args = ap.parse_args()
    common.emit(common.run(measure(args)))


if __name__ == "__main__":
    common.main_guard(main)
