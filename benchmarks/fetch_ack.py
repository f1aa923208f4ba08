"""S3: fetch + ack by HTTP workers draining a pre-filled queue.

Starts its own nats-server and gateway(s) (or uses --url), measures the raw JetStream
ceiling on the same nats-server, fills a queue with --jobs jobs (/jobs/batch), then runs
--clients concurrent async workers, each looping: POST /workers/fetch for --count jobs, then
one POST /workers/ack per job, in turn. Prints jobs/s (acknowledged), fetch and ack latency
p50/p99/max, CPU, the ratio to raw fetch(100) + ack, then one JSON line.

    .venv/bin/python benchmarks/fetch_ack.py [--jobs 20000] [--clients 8] [--count 10]
        [--ack-mode single] [--gateways 1] [--gateway-workers N] [--quick]

--ack-mode names one function of ACKERS: `single` (ACK, one request per job, what every OJS
worker does) and `batch` (an extension endpoint acknowledging several jobs in one request,
if the server offers one: see ack_batch). Adding a mode is adding one function.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import common
import orjson

CEILING = "fetch_ack_per_s"
#: Where `--ack-mode batch` posts, and its body: {"acks": [{"job_id": ...}, ...]}.
BATCH_ACK_PATH = "/ojs/v1/workers/ack/batch"


class Tally:
    def __init__(self) -> None:
        self.fetched = 0
        self.acked = 0
        self.errors = 0
        self.empty_fetches = 0
        self.first_error = ""
        self.fetch_ms: list[float] = []
        self.ack_ms: list[float] = []  # one entry per ack request
        self.last_ack = 0.0

    def error(self, what: str) -> None:
        self.errors += 1
        self.first_error = self.first_error or what


# An acker acknowledges the jobs of one fetch over the client's connection.
Acker = Callable[[common.Http, list[str], Tally], Awaitable[None]]


async def ack_single(conn: common.Http, job_ids: list[str], tally: Tally) -> None:
    """POST /workers/ack once per job, one after another."""
    for job_id in job_ids:
        began = time.perf_counter()
        try:
            reply = await conn.request(
                "POST", "/ojs/v1/workers/ack", orjson.dumps({"job_id": job_id})
            )
        except common.HttpError as exc:
            tally.error(str(exc))
            continue
        tally.ack_ms.append((time.perf_counter() - began) * 1000)
        if reply.ok:
            tally.acked += 1
            tally.last_ack = time.perf_counter()
        else:
            tally.error(f"ack: HTTP {reply.status} {reply.body[:200]!r}")


async def ack_batch(conn: common.Http, job_ids: list[str], tally: Tally) -> None:
    """One request acknowledging every job of the fetch (a server extension)."""
    body = orjson.dumps({"acks": [{"job_id": job_id} for job_id in job_ids]})
    began = time.perf_counter()
    try:
        reply = await conn.request("POST", BATCH_ACK_PATH, body)
    except common.HttpError as exc:
        tally.error(str(exc))
        return
    tally.ack_ms.append((time.perf_counter() - began) * 1000)
    if reply.status in (404, 405):
        raise SystemExit(f"--ack-mode batch: the server has no {BATCH_ACK_PATH} ({reply.status})")
    if reply.ok:
        tally.acked += len(job_ids)
        tally.last_ack = time.perf_counter()
    else:
        tally.error(f"batch ack: HTTP {reply.status} {reply.body[:200]!r}")


ACKERS: dict[str, Acker] = {"single": ack_single, "batch": ack_batch}


async def drain(
    urls: list[str],
    jobs: int,
    clients: int,
    count: int,
    queue: str,
    acker: Acker,
    deadline: common.Deadline,
) -> Tally:
    tally = Tally()

    async def worker(index: int, conn: common.Http) -> None:
        fetch = orjson.dumps({"queues": [queue], "count": count, "worker_id": f"bench-{index}"})
        while tally.fetched < jobs and not deadline.passed:
            began = time.perf_counter()
            try:
                reply = await conn.request("POST", "/ojs/v1/workers/fetch", fetch)
            except common.HttpError as exc:
                tally.error(str(exc))
                continue
            tally.fetch_ms.append((time.perf_counter() - began) * 1000)
            if not reply.ok:
                tally.error(f"fetch: HTTP {reply.status} {reply.body[:200]!r}")
                continue
            found = [job["id"] for job in reply.json().get("jobs") or []]
            if not found:
                tally.empty_fetches += 1
                await asyncio.sleep(0.01)
                continue
            tally.fetched += len(found)
            await acker(conn, found, tally)

    conns = common.connections(urls, clients)
    try:
        await asyncio.gather(*(worker(i, c) for i, c in enumerate(conns)))
    finally:
        common.close_all(conns)
    return tally


async def measure(args: Any) -> dict[str, Any]:
    jobs = args.jobs or (1_000 if args.quick else 20_000)
    max_s = args.max_seconds or (30.0 if args.quick else 180.0)
    with common.stack_from(args) as stack:
        common.header(
            f"S3 fetch + ack: {args.clients} HTTP workers, fetch count {args.count}, "
            f"ack mode {args.ack_mode}",
            stack,
            args,
        )
        ceiling = await common.measure_ceiling(stack, args)
        began = time.perf_counter()
        filled = await common.fill_queue(
            stack.urls, jobs, args.queue, deadline=common.Deadline(300)
        )
        common.say(f"queue filled: {filled:,} jobs in {time.perf_counter() - began:.1f} s")
        with common.CpuMeter(stack.cpu_groups()) as cpu:
            began = time.perf_counter()
            tally = await drain(
                stack.urls,
                filled,
                args.clients,
                args.count,
                args.queue,
                ACKERS[args.ack_mode],
                common.Deadline(max_s),
            )
        seconds = (tally.last_ack or time.perf_counter()) - began
        result = common.base_result("S3 fetch_ack", stack, args)
        stats = await common.queue_stats(stack.urls[0], args.queue)
    per_s = common.rate(tally.acked, seconds)
    phase = {
        "clients": args.clients,
        "fetch_count": args.count,
        "ack_mode": args.ack_mode,
        "jobs": filled,
        "fetched": tally.fetched,
        "acked": tally.acked,
        "seconds": round(seconds, 3),
        "jobs_per_s": per_s,
        "fetch_ms": common.latency_ms(tally.fetch_ms),
        "ack_ms": common.latency_ms(tally.ack_ms),
        "empty_fetches": tally.empty_fetches,
        "errors": tally.errors,
        "cpu_pct": cpu.result,
        "complete": tally.acked >= filled,
        "ratio": {"of": CEILING, "value": common.ratio(per_s, common.ceiling_of(ceiling, CEILING))},
        **({"first_error": tally.first_error} if tally.first_error else {}),
    }
    common.say(f"drained: {tally.acked:,} of {filled:,} jobs acknowledged in {seconds:.2f} s")
    common.rows(
        [
            ("throughput", common.fmt(per_s, "jobs/s")),
            (f"fetch ({args.count}) p50 / p99 / max", common.fmt_latency(phase["fetch_ms"])),
            ("ack p50 / p99 / max", common.fmt_latency(phase["ack_ms"])),
            ("ratio of raw fetch(100) + ack", common.fmt(phase["ratio"]["value"])),
            ("cpu (% of one core)", common.fmt_cpu(cpu.result)),
            ("completed (server's counter)", common.fmt(stats.get("completed"))),
            *common.problems(phase),
        ]
    )
    result.update({"phases": [phase], "ceiling": ceiling})
    return result


def main() -> None:
    ap = common.parser(__doc__)
    ap.add_argument("--jobs", type=int, default=0, help="jobs to drain (20,000)")
    ap.add_argument("--clients", type=int, default=8, help="concurrent HTTP workers")
    ap.add_argument("--count", type=int, default=10, help="jobs asked for per fetch")
    ap.add_argument("--ack-mode", choices=sorted(ACKERS), default="single")
    ap.add_argument("--max-seconds", type=float, default=0, help="bound of the drain (180 s)")
    ap.add_argument("--queue", default="bench")
    args = ap.parse_args()
    common.emit(common.run(measure(args)))


if __name__ == "__main__":
    common.main_guard(main)
