"""S2: batch enqueue, POST /ojs/v1/jobs/batch with 1,000 jobs per request.

Starts its own nats-server and gateway(s) (or uses --url), measures the raw JetStream
ceiling on the same nats-server, then for each concurrency level sends --requests requests
of --batch jobs, each client awaiting its reply before the next. Prints jobs/s, the latency
of one request (p50/p99/max), CPU, the ratio to raw pipelined publish, then one JSON line.

    .venv/bin/python benchmarks/batch_enqueue.py [--requests 100] [--batch 1000]
        [--concurrency 1,4] [--gateways 1] [--gateway-workers N] [--url URL] [--quick]
"""

from __future__ import annotations

from typing import Any

import common
import orjson

TARGET = ">= 30,000 jobs/s (BullMQ addBulk: 27.3k)"
CEILING = "publish_pipelined_per_s"


async def measure(args: Any) -> dict[str, Any]:
    requests = args.requests or (10 if args.quick else 100)
    batch = args.batch or (200 if args.quick else 1000)
    max_s = args.max_seconds or (20.0 if args.quick else 120.0)
    with common.stack_from(args) as stack:
        common.header(
            f"S2 batch enqueue: POST /ojs/v1/jobs/batch, {batch:,} jobs each", stack, args
        )
        ceiling = await common.measure_ceiling(stack, args)

        # One body for every request: jobs get their ids from the server, so it may repeat.
        jobs = [common.job("bench.batch", args.queue, [n]) for n in range(batch)]
        body = orjson.dumps({"jobs": jobs})

        async def send(conn: common.Http, index: int) -> common.Response:
            return await conn.request("POST", "/ojs/v1/jobs/batch", body)

        warm = await common.closed_loop(stack.urls, 1, 2, send, 201, common.Deadline(30), {})
        if warm.ok == 0:
            raise SystemExit(f"warm-up failed: {warm.first_error}")
        phases = []
        for level in common.int_list(args.concurrency):
            loop = await common.closed_loop(
                stack.urls, level, requests, send, 201, common.Deadline(max_s), stack.cpu_groups()
            )
            phase = loop.as_dict(unit=batch, name="jobs_per_s")
            phase["jobs_per_request"] = batch
            phase["ratio"] = {
                "of": CEILING,
                "value": common.ratio(phase["jobs_per_s"], common.ceiling_of(ceiling, CEILING)),
            }
            phases.append(phase)
            report(phase)
        result = common.base_result("S2 batch_enqueue", stack, args)
        stats = await common.queue_stats(stack.urls[0], args.queue)
    result.update(
        {"phases": phases, "ceiling": ceiling, "queue_available_after": stats.get("available")}
    )
    return result


def report(phase: dict[str, Any]) -> None:
    common.say(
        f"concurrency {phase['concurrency']}: {phase['ok']:,} requests x "
        f"{phase['jobs_per_request']:,} jobs in {phase['seconds']:.2f} s"
    )
    common.rows(
        [
            ("throughput", common.fmt(phase["jobs_per_s"], "jobs/s")),
            ("per request p50 / p99 / max", common.fmt_latency(phase["latency_ms"])),
            ("ratio of raw publish, pipelined", common.fmt(phase["ratio"]["value"])),
            ("cpu (% of one core)", common.fmt_cpu(phase["cpu_pct"])),
            ("issue #9 target", TARGET),
            *common.problems(phase),
        ]
    )


def main() -> None:
    ap = common.parser(__doc__)
    ap.add_argument("--requests", type=int, default=0, help="requests per level (100)")
    ap.add_argument("--batch", type=int, default=0, help="jobs per request (1,000)")
    ap.add_argument("--concurrency", default="1,4", help="comma-separated levels")
    ap.add_argument("--max-seconds", type=float, default=0, help="bound per level (120 s)")
    ap.add_argument("--queue", default="bench")
    args = ap.parse_args()
    common.emit(common.run(measure(args)))


if __name__ == "__main__":
    common.main_guard(main)
