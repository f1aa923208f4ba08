"""S6: soak: a steady enqueue + process rate for --minutes, RSS and latency at start vs end.

Starts its own nats-server, gateway(s) and --procs `ojs-nats worker noop_worker:worker`
processes (or uses --url for the gateways), measures the raw JetStream ceiling, then enqueues
`bench.timed` jobs at --rate jobs/s (open loop, POST /jobs, at most 32 in flight) for
--minutes; each job reports its end-to-end latency (enqueue -> handler) to this process.
After a warm-up, the first and the last --window seconds are compared: RSS of nats-server +
gateways + workers (median of the 50 ms samples), p99 of the end-to-end latency and of the
enqueue request, and what JetStream stores (bytes, job records), since nats-server's memory
grows with the records it keeps. Prints progress once per window, the comparison, then one JSON
line.

Finished jobs are kept 24 h and events 7 days by default, so a 10-minute soak only ever adds
to the store. `--retention S` keeps both S seconds instead (`OJS_FINISHED_RETENTION_S`,
`OJS_EVENTS_MAX_AGE_S`): once the soak is longer than that, the store stops growing, and what
RSS still gains is not stored data.

    .venv/bin/python benchmarks/soak.py [--minutes 10] [--rate 200] [--procs 2]
        [--concurrency 20] [--window 60] [--warmup 30] [--retention S] [--gateways 1] [--quick]
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Callable
from typing import Any

import common
import nats
import orjson

from ojs_nats.storage.names import Names

QUEUE = "bench"
TARGET = "RSS growth < 10%, p99 drift < 20%"


class Producer:
    """Open loop: every 10 ms, send what the rate says is owed (at most `inflight` at once)."""

    def __init__(self, urls: list[str], rate: float, inflight: int = 32) -> None:
        self.rate = rate
        self.conns = common.connections(urls, inflight)
        self.sent = self.ok = self.errors = self.skipped = 0
        self.latencies: list[tuple[float, float]] = []  # (monotonic, ms)
        self.first_error = ""

    async def _send(self, conn: common.Http) -> None:
        body = orjson.dumps(common.job("bench.timed", QUEUE, [repr(time.time())]))
        began = time.perf_counter()
        try:
            reply = await conn.request("POST", "/ojs/v1/jobs", body)
        except common.HttpError as exc:
            self.errors += 1
            self.first_error = self.first_error or str(exc)
        else:
            self.latencies.append((time.monotonic(), (time.perf_counter() - began) * 1000))
            if reply.status == 201:
                self.ok += 1
            else:
                self.errors += 1
                self.first_error = self.first_error or f"HTTP {reply.status} {reply.body[:200]!r}"
        finally:
            self.conns.append(conn)

    async def run(self, seconds: float) -> None:
        began = time.monotonic()
        tasks: set[asyncio.Task[None]] = set()
        while (elapsed := time.monotonic() - began) < seconds:
            owed = int(elapsed * self.rate) - self.sent - self.skipped
            for _ in range(max(0, owed)):
                if not self.conns:  # all connections busy: the server is behind the rate
                    self.skipped += 1
                    continue
                self.sent += 1
                task = asyncio.create_task(self._send(self.conns.pop()))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
            await asyncio.sleep(0.01)
        if tasks:
            await asyncio.wait(tasks, timeout=30)

    def close(self) -> None:
        common.close_all(self.conns)


class StoreSampler:
    """What JetStream stores, every `interval` s: the account's bytes on disk and the number of
    job records (one per job kept, finished ones until their retention ends)."""

    def __init__(self, nats_url: str, namespace: str, interval: float = 5.0) -> None:
        self.nats_url = nats_url
        self.jobs_stream = Names(namespace).jobs_stream
        self.interval = interval
        #: (monotonic, value) samples
        self.stored_mib: list[tuple[float, float]] = []
        self.job_records: list[tuple[float, float]] = []
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        nc = await nats.connect(self.nats_url)
        try:
            while True:
                account = orjson.loads((await nc.request("$JS.API.INFO", b"", 2)).data)
                jobs = orjson.loads(
                    (await nc.request(f"$JS.API.STREAM.INFO.{self.jobs_stream}", b"", 2)).data
                )
                at = time.monotonic()
                self.stored_mib.append((at, account.get("storage", 0) / common.MIB))
                self.job_records.append((at, float(jobs.get("state", {}).get("messages", 0))))
                await asyncio.sleep(self.interval)
        finally:
            await nc.close()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)


def window(samples: list[tuple[float, float]], start: float, end: float) -> list[float]:
    return [value for at, value in samples if start <= at < end]


def drift(before: float | None, after: float | None) -> float | None:
    if not before or after is None:
        return None
    return round(100 * (after - before) / before, 1)


def p99(values: list[float]) -> float | None:
    return round(common.pct(values, 0.99), 3) if values else None


def median_mib(values: list[float]) -> float | None:
    return round(statistics.median(values) / common.MIB, 1) if values else None


def median_of(values: list[float]) -> float | None:
    return round(statistics.median(values), 1) if values else None


def change_row(label: str, figure: dict[str, Any], unit: str = "") -> tuple[str, str]:
    """A printed row: `label start -> end` with the change in %."""
    return (
        f"{label} start -> end",
        f"{common.fmt(figure['start'])} -> {common.fmt(figure['end'])}{unit} "
        f"({common.fmt(figure['change_pct'])} %)",
    )


async def measure(args: Any) -> dict[str, Any]:
    seconds = 60 * (args.minutes or (0.25 if args.quick else 10))
    win = args.window or (4 if args.quick else 60)
    warm = args.warmup if args.warmup is not None else (2 if args.quick else 30)
    win = min(win, max(1.0, (seconds - warm) / 2))
    args.rate = args.rate or (50 if args.quick else 200)
    kept_s = str(args.retention)
    retention = (
        {"OJS_FINISHED_RETENTION_S": kept_s, "OJS_EVENTS_MAX_AGE_S": kept_s}
        if args.retention
        else {}
    )
    with common.stack_from(args, env=retention) as stack:
        kept = f"{args.retention} s" if args.retention else "server defaults"
        common.header(
            f"S6 soak: {args.rate:g} jobs/s for {seconds / 60:g} min, windows of {win:g} s "
            f"after {warm:g} s warm-up, {args.procs} worker proc x c={args.concurrency}, "
            f"finished jobs and events kept: {kept}",
            stack,
            args,
        )
        ceiling = await common.measure_ceiling(stack, args)
        counter = await common.CompletionCounter().start()
        producer = Producer(stack.urls, args.rate)
        sampler = common.RssSampler(stack.nats_pids + stack.gateway_pids, timeline=True)
        # the same per group, to see which one grows
        groups = {
            "nats": common.RssSampler(stack.nats_pids, interval=1.0, timeline=True),
            "gateways": common.RssSampler(stack.gateway_pids, interval=1.0, timeline=True),
            "workers": common.RssSampler([], interval=1.0, timeline=True),
        }
        every = max(0.5, min(5.0, win / 4))
        store = StoreSampler(stack.nats_url, stack.namespace, every) if stack.nats_url else None
        try:
            workers = stack.start_workers(
                "noop_worker:worker",
                args.procs,
                args.concurrency,
                [QUEUE],
                env={"BENCH_COUNTER_PORT": str(counter.port)},
            )
            sampler.add(*(w.pid for w in workers))
            groups["workers"].add(*(w.pid for w in workers))
            sampler.start()
            for each in groups.values():
                each.start()
            if store is not None:
                store.start()
            began = time.monotonic()
            run = asyncio.create_task(producer.run(seconds))
            while not run.done():
                await asyncio.wait({run}, timeout=win)
                now = time.monotonic()
                recent = [ms for at, ms in counter.latencies if at >= now - win]
                rss = sampler.samples[-1][1] if sampler.samples else 0
                common.say(
                    f"  t={now - began:5.0f} s  sent {producer.sent:,}  done {counter.count:,}  "
                    f"e2e p99 {common.fmt(p99(recent))} ms  RSS {rss / common.MIB:.0f} MiB"
                )
            await run
            ended = time.monotonic()
            await counter.wait_for(producer.ok, 30)  # let the backlog drain (bounded)
            sampler.stop()
            for each in groups.values():
                each.stop()
        finally:
            if store is not None:
                await store.stop()
            producer.close()
            counter.close()
        result = common.base_result("S6 soak", stack, args)

    first = (began + warm, began + warm + win)
    last = (ended - win, ended)

    def compare(
        samples: list[tuple[float, float]], summary: Callable[[list[float]], float | None]
    ) -> dict[str, Any]:
        start, end = summary(window(samples, *first)), summary(window(samples, *last))
        return {"start": start, "end": end, "change_pct": drift(start, end)}

    def rss(each: common.RssSampler) -> list[tuple[float, float]]:
        return [(at, float(b)) for at, b in each.samples or []]

    figures = {
        "rss_mib": compare(rss(sampler), median_mib),
        "e2e_p99_ms": compare(counter.latencies, p99),
        "enqueue_p99_ms": compare(producer.latencies, p99),
    }
    stored = {
        "stored_mib": compare(store.stored_mib if store else [], median_of),
        "job_records": compare(store.job_records if store else [], median_of),
    }
    by_group = {name: compare(rss(each), median_mib) for name, each in groups.items()}
    result.update(
        {
            "minutes": round(seconds / 60, 3),
            "rate": args.rate,
            "achieved_per_s": common.rate(producer.ok, ended - began),
            "sent": producer.sent,
            "enqueued": producer.ok,
            "completed": counter.count,
            "backlog_after_drain": producer.ok - counter.count,
            "skipped_all_busy": producer.skipped,
            "errors": producer.errors,
            "window_s": win,
            "warmup_s": warm,
            **figures,
            "rss_by_group_mib": by_group,
            "jetstream": stored,
            "retention_s": args.retention or None,
            "peak_rss_mib": round(sampler.peak / common.MIB, 1) if sampler.peak else None,
            "ceiling": ceiling,
            "complete": producer.skipped == 0 and producer.ok == counter.count,
            **({"first_error": producer.first_error} if producer.first_error else {}),
        }
    )
    common.say("")
    common.rows(
        [
            ("rate asked / achieved", f"{args.rate:g} / {result['achieved_per_s']:,.0f} jobs/s"),
            ("enqueued / completed", f"{producer.ok:,} / {counter.count:,}"),
            *[change_row(name, f) for name, f in figures.items()],
            *[change_row(f"   rss {name}", f, " MiB") for name, f in by_group.items()],
            *[change_row(f"jetstream {name}", f) for name, f in stored.items()],
            ("issue #9 target", TARGET),
            *(
                [("behind the rate", f"{producer.skipped:,} sends skipped (all 32 busy)")]
                if producer.skipped
                else []
            ),
            *common.problems({k: v for k, v in result.items() if k != "complete"}),
        ]
    )
    return result


def main() -> None:
    ap = common.parser(__doc__)
    ap.add_argument("--minutes", type=float, default=0, help="duration (10)")
    ap.add_argument("--rate", type=float, default=0, help="jobs enqueued per second (200)")
    ap.add_argument("--procs", type=int, default=2, help="worker processes")
    ap.add_argument("--concurrency", type=int, default=20, help="jobs at once per worker")
    ap.add_argument("--window", type=float, default=0, help="seconds compared at start/end (60)")
    ap.add_argument("--warmup", type=float, default=None, help="seconds ignored first (30)")
    ap.add_argument(
        "--retention",
        type=int,
        default=0,
        help="seconds finished jobs and events are kept (default: the server's, 24 h / 7 days)",
    )
    args = ap.parse_args()
    common.emit(common.run(measure(args)))


if __name__ == "__main__":
    common.main_guard(main)
