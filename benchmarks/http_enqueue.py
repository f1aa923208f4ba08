"""S1: single-job HTTP enqueue, POST /ojs/v1/jobs, at concurrency 1 and 32.

Starts its own nats-server and gateway(s) (or uses --url), measures the raw JetStream
ceiling on the same nats-server, sends a short warm-up, then for each concurrency level
sends --requests requests, each client awaiting its reply before the next (closed loop).
Prints req/s, latency p50/p99/max, CPU of client, gateways and nats-server, the ratio to
raw publish (awaited for concurrency 1, pipelined otherwise), then one JSON line.

    .venv/bin/python benchmarks/http_enqueue.py [--concurrency 1,32] [--requests 10000]
        [--gateways 1] [--gateway-workers N] [--quick]
"""

from __future__ import annotations

from typing import Any

import common
import orjson

TARGETS = {1: "p99 < 1 ms", 32: ">= 6,000 req/s with p99 < 25 ms"}


async def measure(args: Any) -> dict[str, Any]:
    requests = args.requests or (500 if args.quick else 10_000)
    max_s = args.max_seconds or (20.0 if args.quick else 90.0)
    levels = common.int_list(args.concurrency)
    with common.stack_from(args) as stack:
        common.header("S1 single-job enqueue: POST /ojs/v1/jobs", stack, args)
        ceiling = await common.measure_ceiling(stack, args)
        body = orjson.dumps(common.job("bench.noop", args.queue))

        async def send(conn: common.Http, index: int) -> common.Response:
            return await conn.request("POST", "/ojs/v1/jobs", body)

        warm = await common.closed_loop(
            stack.urls, 8, 200 if not args.quick else 50, send, 201, common.Deadline(30), {}
        )
        if warm.ok == 0:
            raise SystemExit(f"warm-up failed: {warm.first_error}")
        phases = []
        for level in levels:
            loop = await common.closed_loop(
                stack.urls, level, requests, send, 201, common.Deadline(max_s), stack.cpu_groups()
            )
            key = "publish_awaited_per_s" if level == 1 else "publish_pipelined_per_s"
            phase = loop.as_dict(name="req_per_s")
            phase["ratio"] = {
                "of": key,
                "value": common.ratio(loop.per_s(), common.ceiling_of(ceiling, key)),
            }
            phases.append(phase)
            report(phase, key, TARGETS.get(level))
        result = common.base_result("S1 http_enqueue", stack, args)
        stats = await common.queue_stats(stack.urls[0], args.queue)
    result.update(
        {"phases": phases, "ceiling": ceiling, "queue_available_after": stats.get("available")}
    )
    return result


def report(phase: dict[str, Any], ceiling_key: str, target: str | None) -> None:
    lat = phase["latency_ms"]
    common.say(
        f"concurrency {phase['concurrency']}: {phase['ok']:,} jobs in {phase['seconds']:.2f} s"
    )
    common.rows(
        [
            ("throughput", common.fmt(phase["req_per_s"], "req/s")),
            ("latency p50 / p99 / max", common.fmt_latency(lat)),
            (
                f"ratio of raw {common.CEILING_LABELS[ceiling_key]}",
                common.fmt(phase["ratio"]["value"]),
            ),
            ("cpu (% of one core)", common.fmt_cpu(phase["cpu_pct"])),
            *([("issue #9 target", target)] if target else []),
            *common.problems(phase),
        ]
    )


def main() -> None:
    ap = common.parser(__doc__)
    ap.add_argument("--concurrency", default="1,32", help="comma-separated levels")
    ap.add_argument("--requests", type=int, default=0, help="requests per level (10,000)")
    ap.add_argument("--max-seconds", type=float, default=0, help="bound per level (90 s)")
    ap.add_argument("--queue", default="bench")
    args = ap.parse_args()
    common.emit(common.run(measure(args)))


if __name__ == "__main__":
    common.main_guard(main)
