"""S4: end to end with the ojs_nats worker runtime, measured as ../shared/bench/ measures the
peers (BullMQ, taskiq-nats, arq, Celery).

For each variant (jobs enqueued one by one, each awaited; then in bulk, /jobs/batch of
--batch jobs, each awaited) on a fresh nats-server and gateway(s):
  1. enqueue N = 20,000 no-op jobs from this process (the producer);
  2. start the RSS sampler (nats-server + gateways, then workers; producer excluded) and
     --procs `ojs-nats worker noop_worker:worker` processes (--concurrency each; over HTTP,
     then, on a fresh stack again, `--direct`: --transports); every job
     does one round trip to this process's completion counter (as the peers' INCR);
  3. poll the counter every 20 ms until N.
Reports enqueue jobs/s, processing jobs/s = N / (last completion - first completion),
boot_s = workers started -> first completion, e2e_s = enqueue start -> last completion and
peak RSS (sampled every 50 ms), then the peers' figures measured earlier on this machine,
then one JSON line. The raw JetStream ceiling is measured on the first run's nats-server.

    .venv/bin/python benchmarks/end_to_end.py [--n 20000] [--procs 2] [--concurrency 50]
        [--variants single,bulk] [--transports http,direct] [--reps 1] [--gateways 1]
        [--gateway-workers N] [--quick]
"""

from __future__ import annotations

import statistics
import time
from typing import Any

import common
import orjson

QUEUE = "bench"
TARGET = "ahead of taskiq-nats (>= 8.5k jobs/s) first, then >= 15k jobs/s (BullMQ)"
#: ../shared/bench/README.md: measured earlier on this kind of machine (2 cores), medians of 3
#: runs, 20,000 no-op jobs; NOT measured in this run. (enqueue 1x1, bulk, processing j/s, MiB)
PEERS = [
    ("BullMQ + Redis (no persistence)", 15_400, 27_300, 15_300, 135),
    ("BullMQ + Redis (AOF everysec)", 15_300, 26_700, 12_400, 135),
    ("taskiq-nats, pull batch 100", 6_400, 13_000, 8_400, 175),
    ("arq + Redis, tuned", 3_700, 5_300, 1_400, 54),
    ("Celery + Redis, prefork 2", 2_700, 2_500, 1_200, 173),
]


async def enqueue(
    stack: common.Stack, n: int, variant: str, batch: int, max_s: float
) -> dict[str, Any]:
    """The producer: one connection, every request awaited before the next."""
    conn = common.Http(stack.urls[0])
    deadline = common.Deadline(max_s)
    done = errors = 0
    first_error = ""
    try:
        with common.CpuMeter({}) as cpu:
            began = time.perf_counter()
            while done < n and not deadline.passed:
                size = 1 if variant == "single" else min(batch, n - done)
                if variant == "single":
                    path, body = "/ojs/v1/jobs", common.job("bench.noop", QUEUE, [done])
                else:
                    jobs = [common.job("bench.noop", QUEUE, [done + i]) for i in range(size)]
                    path, body = "/ojs/v1/jobs/batch", {"jobs": jobs}
                try:
                    reply = await conn.request("POST", path, orjson.dumps(body))
                except common.HttpError as exc:
                    errors += 1
                    first_error = first_error or str(exc)
                    if errors > 100:
                        break
                    continue
                if reply.status == 201:
                    done += size
                else:
                    errors += 1
                    first_error = first_error or f"HTTP {reply.status} {reply.body[:200]!r}"
                    if errors > 100:
                        break
            ended = time.perf_counter()
    finally:
        conn.close()
    return {
        "t0": began,
        "t1": ended,
        "enqueued": done,
        "errors": errors,
        "first_error": first_error,
        "client_cpu_pct": cpu.result["client"],
    }


async def one_run(
    args: Any, variant: str, transport: str, want_ceiling: bool
) -> tuple[dict[str, Any], Any]:
    n = args.n or (1_000 if args.quick else 20_000)
    with common.stack_from(args) as stack:
        ceiling = await common.measure_ceiling(stack, args) if want_ceiling else None
        counter = await common.CompletionCounter().start()
        try:
            produced = await enqueue(stack, n, variant, args.batch, 60 if args.quick else 300)
            t0, t1, enqueued = produced["t0"], produced["t1"], produced["enqueued"]
            sampler = common.RssSampler(stack.nats_pids + stack.gateway_pids)
            sampler.start()
            servers = common.CpuMeter({"gateways": stack.gateway_pids, "nats": stack.nats_pids})
            servers.__enter__()
            t_workers = time.perf_counter()
            started = stack.start_workers(
                "noop_worker:worker",
                args.procs,
                args.concurrency,
                [QUEUE],
                env={"BENCH_COUNTER_PORT": str(counter.port)},
                direct=transport == "direct",
            )
            sampler.add(*(w.pid for w in started))
            t_first, t_last, complete = await counter.wait_for(enqueued, 60 if args.quick else 600)
            peak = sampler.stop()
            servers.__exit__()
            workers_cpu = common.cpu_seconds([w.pid for w in started])
            cpu = {
                **servers.result,
                "workers": round(100 * workers_cpu / max(time.perf_counter() - t_workers, 1e-9), 1),
            }
            stack.stop_workers()
            stats = await common.queue_stats(stack.urls[0], QUEUE)
        finally:
            counter.close()
    label = "x1 (each awaited)" if variant == "single" else f"batch({args.batch}) each awaited"
    t_first = t_first or t_last or t_workers
    t_last = t_last or t_first
    process_s = max(t_last - t_first, 1e-9)
    result = {
        "variant": variant,
        "transport": transport,
        "label": f"{label}, {args.procs} proc x c={args.concurrency}, {transport} workers",
        "n": enqueued,
        "enqueue_s": round(t1 - t0, 3),
        "enqueue_jobs_per_s": common.rate(enqueued, t1 - t0),
        "boot_s": round(t_first - t_workers, 3),
        "process_s": round(process_s, 3),
        "process_jobs_per_s": common.rate(counter.count if not complete else enqueued, process_s),
        "e2e_s": round(t_last - t0, 3),
        "peak_rss_mib": round(peak / common.MIB, 1) if peak else None,
        "producer_cpu_pct": produced["client_cpu_pct"],
        "processing_cpu_pct": cpu,
        "completed_counted": counter.count,
        "completed_server": stats.get("completed"),
        "complete": complete and enqueued == n,
        "errors": produced["errors"],
        **({"first_error": produced["first_error"]} if produced["first_error"] else {}),
    }
    common.say(f"-- {result['label']}: {enqueued:,} jobs")
    common.rows(
        [
            (
                "enqueue",
                f"{common.fmt(result['enqueue_jobs_per_s'], 'jobs/s')} "
                f"({result['enqueue_s']:.2f} s, producer cpu {result['producer_cpu_pct']:.0f}%)",
            ),
            ("processing", common.fmt(result["process_jobs_per_s"], "jobs/s")),
            (
                "boot_s / process_s / e2e_s",
                f"{result['boot_s']:.2f} / {result['process_s']:.2f} / {result['e2e_s']:.2f} s",
            ),
            ("cpu while processing (% of a core)", common.fmt_cpu(cpu)),
            ("peak RSS (nats, gateways, workers)", common.fmt(result["peak_rss_mib"], "MiB")),
            (
                "completed: counter / server",
                f"{counter.count:,} / {common.fmt(stats.get('completed'))}",
            ),
            *common.problems(result),
        ]
    )
    return result, ceiling


def add_ratios(result: dict[str, Any], ceiling: dict[str, Any] | None) -> None:
    enqueue_key = (
        "publish_awaited_per_s" if result["variant"] == "single" else "publish_pipelined_per_s"
    )
    result["ratio"] = {
        "enqueue": {
            "of": enqueue_key,
            "value": common.ratio(
                result["enqueue_jobs_per_s"], common.ceiling_of(ceiling, enqueue_key)
            ),
        },
        "processing": {
            "of": "fetch_ack_per_s",
            "value": common.ratio(
                result["process_jobs_per_s"], common.ceiling_of(ceiling, "fetch_ack_per_s")
            ),
        },
    }


def k(value: float | None) -> str:
    if value is None:
        return "n/a"
    return f"{value / 1000:.1f}k" if value >= 1000 else f"{value:.0f}"


def transports(args: Any) -> list[str]:
    return [t for t in args.transports.split(",") if t]


def table(runs: list[dict[str, Any]]) -> None:
    def median(variant: str, transport: str, key: str) -> float | None:
        values = [
            r[key]
            for r in runs
            if r["variant"] == variant and r["transport"] == transport and r[key] is not None
        ]
        return statistics.median(values) if values else None

    ours = []
    for transport in dict.fromkeys(r["transport"] for r in runs):
        procs = [median(v, transport, "process_jobs_per_s") for v in ("single", "bulk")]
        rss = [r["peak_rss_mib"] for r in runs if r["peak_rss_mib"] and r["transport"] == transport]
        ours.append(
            (
                f"ojs-nats, {transport} workers (this run)",
                k(median("single", transport, "enqueue_jobs_per_s")),
                k(median("bulk", transport, "enqueue_jobs_per_s")),
                " / ".join(k(p) for p in procs if p is not None),
                f"{max(rss):.0f} MiB" if rss else "n/a",
            )
        )
    common.say("")
    common.say(
        "S4 beside the peers (peers: ../shared/bench/README.md, measured EARLIER on this kind"
    )
    common.say("of machine, medians of 3 runs, not in this run; noise between runs is 15-30%):")
    head = ("system", "enqueue 1x1", "bulk", "processing", "peak RSS")
    lines = ours + [(name, k(a), k(b), k(c), f"{m} MiB") for name, a, b, c, m in PEERS]
    widths = [max(len(str(row[i])) for row in [head, *lines]) for i in range(5)]
    for row in [head, *lines]:
        common.say(
            "  " + "  ".join(str(cell).ljust(w) for cell, w in zip(row, widths, strict=True))
        )
    common.say(
        "  (our processing: the x1 run / the bulk run; our enqueue has an HTTP hop the peers lack)"
    )
    common.say(f"  issue #9 target: {TARGET}")


async def measure(args: Any) -> dict[str, Any]:
    variants = [v for v in args.variants.split(",") if v]
    stack = common.stack_from(args)
    common.header(
        f"S4 end to end: {args.n or (1_000 if args.quick else 20_000):,} no-op jobs, "
        f"ojs_nats worker runtime ({args.procs} proc x concurrency {args.concurrency})",
        stack,
        args,
    )
    runs, ceiling = [], None
    for rep in range(args.reps):
        for variant in variants:
            for transport in transports(args):
                result, measured = await one_run(
                    args, variant, transport, want_ceiling=ceiling is None and rep == 0
                )
                ceiling = ceiling or measured
                result["rep"] = rep
                runs.append(result)
    for result in runs:
        add_ratios(result, ceiling)
    table(runs)
    out = common.base_result("S4 end_to_end", stack, args)
    out.update(
        {
            "worker_procs": args.procs,
            "worker_concurrency": args.concurrency,
            "runs": runs,
            "ceiling": ceiling,
            "peers_reference": [
                dict(
                    zip(
                        ("system", "enqueue_x1", "enqueue_bulk", "process", "peak_rss_mib"),
                        p,
                        strict=True,
                    )
                )
                for p in PEERS
            ],
        }
    )
    return out


def main() -> None:
    ap = common.parser(__doc__)
    ap.add_argument("--n", type=int, default=0, help="jobs per run (20,000)")
    ap.add_argument("--procs", type=int, default=2, help="worker processes")
    ap.add_argument("--concurrency", type=int, default=50, help="jobs at once per worker")
    ap.add_argument("--batch", type=int, default=1000, help="jobs per /jobs/batch request")
    ap.add_argument("--variants", default="single,bulk")
    ap.add_argument("--reps", type=int, default=1)
    ap.add_argument(
        "--transports",
        default="http,direct",
        help="worker transports, each run in turn: http (via the gateway) and/or direct "
        "(`ojs-nats worker --direct`: JetStream through the service layer)",
    )
    args = ap.parse_args()
    if set(args.variants.split(",")) - {"single", "bulk"}:
        ap.error("--variants: single and/or bulk")
    if not transports(args) or set(transports(args)) - {"http", "direct"}:
        ap.error("--transports: http and/or direct")
    common.emit(common.run(measure(args)))


if __name__ == "__main__":
    common.main_guard(main)
