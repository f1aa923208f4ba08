"""Shared harness of the benchmark scripts (S1-S6): processes, measurement, output.

- `Stack`: a fresh nats-server (in a temporary directory) and N gateway processes
  (`ojs-nats serve`, `OJS_WORKERS` uvicorn workers each), or existing URLs (`--url`).
- `RssSampler`, `CpuMeter`: summed RSS / CPU of process trees, read from /proc every 50 ms.
- `Http`: a lean keep-alive HTTP/1.1 client connection, so the load generator costs the
  machine as little as possible (its CPU is still reported: "client cpu").
- `jetstream_ceiling`: what nats-py alone does against the same nats-server in the same run
  (publish awaiting each ack, pipelined publish, fetch(100) + ack), so every figure can be
  given as a ratio of it.
- `CompletionCounter`: where the no-op job reports (one round trip per job, as the peers'
  `INCR bench:done`); polled every 20 ms as the peers' harness polls its counter.
- `pct`, `emit` and the command-line options every script shares (`--quick`, `--url`, ...).

Benchmarks never fail because a machine is slow: every loop is bounded by a count and a
deadline, and a phase that runs out of time reports what it did (`"complete": false`).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import http.client
import json
import math
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from collections.abc import Awaitable, Callable, Coroutine, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import orjson

from ojs_nats.embedded import NatsServer

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
PAGE = os.sysconf("SC_PAGE_SIZE")
TICKS = os.sysconf("SC_CLK_TCK")
MIB = 2**20
T = TypeVar("T")


# ---------------------------------------------------------------- small helpers
def pct(values: Iterable[float], q: float) -> float:
    """Nearest-rank percentile, q in [0, 1]; NaN for no values."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


def latency_ms(values: list[float]) -> dict[str, float | None]:
    """p50 / p99 / max of latencies already in ms, rounded for printing."""
    if not values:
        return {"p50": None, "p99": None, "max": None}
    return {
        "p50": round(pct(values, 0.50), 3),
        "p99": round(pct(values, 0.99), 3),
        "max": round(max(values), 3),
    }


def ratio(ours: float | None, ceiling: float | None) -> float | None:
    if not ours or not ceiling:
        return None
    return round(ours / ceiling, 3)


def rate(count: int, seconds: float) -> float:
    return round(count / seconds, 1) if seconds > 0 else 0.0


def fmt(value: object, unit: str = "") -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    if isinstance(value, float):
        text = f"{value:,.0f}" if abs(value) >= 100 else f"{value:.3g}"
    else:
        text = f"{value:,}" if isinstance(value, int) else str(value)
    return f"{text} {unit}".rstrip()


def fmt_latency(lat: dict[str, float | None]) -> str:
    return f"{fmt(lat['p50'])} / {fmt(lat['p99'])} / {fmt(lat['max'])} ms"


def fmt_cpu(cpu: dict[str, float]) -> str:
    return ", ".join(f"{name} {value:.0f}%" for name, value in cpu.items())


def problems(phase: dict[str, Any]) -> list[tuple[str, str]]:
    """Rows for errors and a phase cut short by its time bound (none when all went well)."""
    found = []
    if phase.get("errors"):
        found.append(("errors", f"{phase['errors']} (first: {phase.get('first_error')})"))
    if phase.get("complete") is False:
        found.append(("incomplete", "stopped at its time bound; figures cover what was done"))
    return found


def say(*parts: object) -> None:
    """Human-readable output (never starts with '{': the JSON line is the only one that does)."""
    print(*parts, flush=True)


def rows(pairs: Iterable[tuple[str, str]], width: int = 38) -> None:
    for label, value in pairs:
        say(f"  {label:<{width}}{value}")


def emit(result: dict[str, Any]) -> None:
    """The one machine-readable line of a run."""
    print(json.dumps(result, separators=(",", ":"), default=str), flush=True)


def run(main: Coroutine[Any, Any, T]) -> T:
    """asyncio.run on uvloop when it is installed (the gateway runs on it too)."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop comes with uvicorn[standard]
        return asyncio.run(main)
    return uvloop.run(main)


def loop_name() -> str:
    return type(asyncio.get_running_loop()).__module__.split(".")[0]


def stop_on_sigterm() -> None:
    """SIGTERM unwinds like Ctrl-C, so every `finally` stops the processes it started."""

    def raise_exit(signum: int, frame: object) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, raise_exit)


class Deadline:
    def __init__(self, seconds: float) -> None:
        self.at = time.monotonic() + seconds

    def left(self) -> float:
        return max(0.0, self.at - time.monotonic())

    @property
    def passed(self) -> bool:
        return time.monotonic() >= self.at


# ---------------------------------------------------------------- /proc: RSS and CPU
def descendants(pid: int) -> list[int]:
    """pid and every process below it (from /proc/PID/task/*/children)."""
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        try:
            tasks = os.listdir(f"/proc/{current}/task")
        except OSError:
            continue
        for task in tasks:
            try:
                with open(f"/proc/{current}/task/{task}/children") as fh:
                    todo.extend(int(child) for child in fh.read().split())
            except OSError:
                continue
    return found


def rss_bytes(pids: Iterable[int]) -> int:
    """Summed RSS of the process trees rooted at pids."""
    total = 0
    for root in pids:
        for pid in descendants(root):
            try:
                with open(f"/proc/{pid}/statm") as fh:
                    total += int(fh.read().split()[1]) * PAGE
            except (OSError, IndexError, ValueError):
                continue
    return total


def cpu_seconds(pids: Iterable[int]) -> float:
    """User + system CPU of the live processes of the trees rooted at pids."""
    total = 0
    for root in pids:
        for pid in descendants(root):
            try:
                with open(f"/proc/{pid}/stat") as fh:
                    fields = fh.read().rsplit(")", 1)[1].split()
                total += int(fields[11]) + int(fields[12])
            except (OSError, IndexError, ValueError):
                continue
    return total / TICKS


class RssSampler(threading.Thread):
    """Summed RSS of a set of process trees every `interval` s; keeps the peak (and the
    timeline when asked). Roots may be added while it runs (workers started later)."""

    def __init__(self, roots: Iterable[int] = (), interval: float = 0.05, timeline: bool = False):
        super().__init__(daemon=True, name="rss-sampler")
        self.roots = list(roots)
        self.interval = interval
        self.peak = 0
        self.samples: list[tuple[float, int]] | None = [] if timeline else None
        self._halt = threading.Event()

    def add(self, *pids: int) -> None:
        self.roots.extend(pids)

    def run(self) -> None:
        while not self._halt.is_set():
            total = rss_bytes(list(self.roots))
            self.peak = max(self.peak, total)
            if self.samples is not None:
                self.samples.append((time.monotonic(), total))
            self._halt.wait(self.interval)

    def stop(self) -> int:
        self._halt.set()
        self.join(timeout=2)
        return self.peak


class CpuMeter:
    """CPU used during a phase, in % of one core: this process ("client") and each group of
    process trees (e.g. "gateways", "nats")."""

    def __init__(self, groups: dict[str, list[int]]) -> None:
        self.groups = {name: pids for name, pids in groups.items() if pids}
        self.result: dict[str, float] = {}

    def __enter__(self) -> CpuMeter:
        self._wall = time.perf_counter()
        self._own = time.process_time()
        self._start = {name: cpu_seconds(pids) for name, pids in self.groups.items()}
        return self

    def __exit__(self, *exc: object) -> None:
        wall = max(time.perf_counter() - self._wall, 1e-9)
        self.result = {"client": round(100 * (time.process_time() - self._own) / wall, 1)}
        for name, pids in self.groups.items():
            used = cpu_seconds(pids) - self._start[name]
            self.result[name] = round(100 * used / wall, 1)

    def text(self) -> str:
        return ", ".join(f"{name} {value:.0f}%" for name, value in self.result.items())


# ---------------------------------------------------------------- processes
def _die_with_parent() -> None:
    """In the child: SIGTERM when the benchmark dies, so nothing outlives a killed run."""
    with contextlib.suppress(Exception):
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def spawn(
    argv: list[str], env: dict[str, str], log: Path, cwd: Path = ROOT
) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(
            argv,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=cwd,
            preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None,
        )


def stop_process(
    process: subprocess.Popen[bytes] | None, timeout: float = 15.0, signalled: bool = False
) -> None:
    """SIGTERM (unless already `signalled`: a second SIGTERM means "exit at once" to a
    worker), then SIGKILL after `timeout` (the process and, if still there, its children)."""
    if process is None or process.poll() is not None:
        return
    children = descendants(process.pid)[1:]
    if not signalled:
        process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(5)
    for pid in children:
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)


def stop_all(processes: list[subprocess.Popen[bytes]], timeout: float = 15.0) -> None:
    """SIGTERM to all at once (they shut down in parallel), then wait for each."""
    children = {p.pid: descendants(p.pid)[1:] for p in processes if p.poll() is None}
    for process in processes:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    deadline = Deadline(timeout)
    for process in processes:
        try:
            process.wait(max(0.1, deadline.left()))
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)
    for pids in children.values():
        for pid in pids:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)


def log_tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def get_status(url: str, timeout: float = 1.0) -> int:
    parts = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=timeout)
    try:
        conn.request("GET", parts.path or "/")
        return conn.getresponse().status
    finally:
        conn.close()


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Stack:
    """A fresh nats-server and `gateways` gateway processes in a temporary directory, stopped
    (and the directory removed) on exit; or existing gateways (`urls`, `nats_url` optional)."""

    def __init__(
        self,
        gateways: int = 1,
        gateway_workers: int | None = None,
        env: dict[str, str] | None = None,
        urls: list[str] | None = None,
        nats_url: str | None = None,
        namespace: str | None = None,
        keep: bool = False,
    ) -> None:
        self.gateway_count = gateways
        self.gateway_workers = gateway_workers
        self.extra_env = env or {}
        self.urls = list(urls or [])
        self.nats_url = nats_url
        self.external = bool(urls)
        self.namespace = namespace or "bench" + secrets.token_hex(3)
        self.nats: NatsServer | None = None
        self.gateways: list[subprocess.Popen[bytes]] = []
        self.workers: list[subprocess.Popen[bytes]] = []
        self.workdir: Path | None = None
        self.keep = keep

    # pids for the RSS / CPU meters (empty for external gateways)
    @property
    def nats_pids(self) -> list[int]:
        process = self.nats.process if self.nats else None
        return [process.pid] if process else []

    @property
    def gateway_pids(self) -> list[int]:
        return [g.pid for g in self.gateways]

    @property
    def worker_pids(self) -> list[int]:
        return [w.pid for w in self.workers]

    def cpu_groups(self) -> dict[str, list[int]]:
        return {"gateways": self.gateway_pids, "nats": self.nats_pids, "workers": self.worker_pids}

    def describe(self) -> str:
        if self.external:
            return f"existing gateways {','.join(self.urls)}"
        per = self.gateway_workers or os.environ.get("OJS_WORKERS") or "default"
        where = f", nats-server {self.nats_url}" if self.nats_url else ", fresh nats-server"
        return f"{self.gateway_count} gateway(s) x OJS_WORKERS={per}{where}"

    def start(self) -> Stack:
        if self.external:
            return self
        self.workdir = Path(tempfile.mkdtemp(prefix="ojs-bench-"))
        self.nats = NatsServer(self.workdir / "nats", name="ojs-bench").start()
        self.nats_url = self.nats.url
        env = {
            **os.environ,
            "NATS_URL": self.nats_url,
            "OJS_NAMESPACE": self.namespace,
            "OJS_HOST": "127.0.0.1",
            "OJS_LOG_LEVEL": "warning",
            **self.extra_env,
        }
        if self.gateway_workers:
            env["OJS_WORKERS"] = str(self.gateway_workers)
        ports = [free_port() for _ in range(self.gateway_count)]
        for i, port in enumerate(ports):
            self.gateways.append(
                spawn(
                    [sys.executable, "-m", "ojs_nats.cli", "serve"],
                    {**env, "OJS_PORT": str(port)},
                    self.workdir / f"gateway-{i}.log",
                )
            )
        self.urls = [f"http://127.0.0.1:{port}" for port in ports]
        for i, url in enumerate(self.urls):
            self._wait_ready(i, url)
        return self

    def _wait_ready(self, index: int, url: str, timeout: float = 60.0) -> None:
        assert self.workdir is not None
        log = self.workdir / f"gateway-{index}.log"
        deadline = Deadline(timeout)
        while not deadline.passed:
            if self.gateways[index].poll() is not None:
                raise RuntimeError(f"gateway {index} exited; its log:\n{log_tail(log)}")
            with contextlib.suppress(OSError, http.client.HTTPException):
                if get_status(url + "/ready") == 200:
                    return
            time.sleep(0.05)
        raise RuntimeError(f"gateway {index} not ready after {timeout}s; its log:\n{log_tail(log)}")

    def start_workers(
        self,
        target: str,
        count: int,
        concurrency: int,
        queues: list[str],
        env: dict[str, str] | None = None,
        direct: bool = False,
    ) -> list[subprocess.Popen[bytes]]:
        """`ojs-nats worker TARGET` processes (module relative to benchmarks/), not waited for.
        `direct`: `--direct` workers, on the gateways' nats-server and namespace."""
        logdir = self.workdir or Path(tempfile.gettempdir())
        if direct and not self.nats_url:
            raise RuntimeError("direct workers need the nats-server URL (--nats-url)")
        server_env = {
            "NATS_URL": self.nats_url or "",
            "OJS_NAMESPACE": self.namespace,
            **self.extra_env,
        }
        started = []
        for i in range(count):
            started.append(
                spawn(
                    [sys.executable, "-m", "ojs_nats.cli", "worker", target]
                    + (["--direct"] if direct else []),
                    {
                        **os.environ,
                        **(server_env if direct else {}),
                        "OJS_URL": ",".join(self.urls),
                        "OJS_QUEUES": ",".join(queues),
                        "OJS_CONCURRENCY": str(concurrency),
                        "OJS_LOG_LEVEL": "warning",
                        **(env or {}),
                    },
                    logdir / f"worker-{len(self.workers) + i}.log",
                    cwd=BENCH_DIR,
                )
            )
        self.workers.extend(started)
        return started

    def stop_workers(self) -> None:
        stop_all(self.workers, timeout=30)
        self.workers = []

    def stop(self) -> None:
        self.stop_workers()
        stop_all(self.gateways, timeout=30)
        self.gateways = []
        if self.nats is not None:
            self.nats.stop()
            self.nats = None
        if self.workdir is not None:
            if self.keep:
                say(f"   logs kept in {self.workdir}")
            else:
                shutil.rmtree(self.workdir, ignore_errors=True)
            self.workdir = None

    def __enter__(self) -> Stack:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc: object) -> None:
        self.stop()


# ---------------------------------------------------------------- HTTP client
class HttpError(Exception):
    pass


@dataclass(slots=True)
class Response:
    status: int
    body: bytes

    def json(self) -> Any:
        return orjson.loads(self.body) if self.body else None

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


class Http:
    """One keep-alive HTTP/1.1 connection; one request at a time.

    Far cheaper per request than a general client (no pool, no header objects), so the
    client is rarely what limits a figure; reconnects when the connection sat idle longer
    than the server's keep-alive (uvicorn: 5 s). A request is never sent twice."""

    IDLE_S = 4.0

    def __init__(self, url: str, timeout: float = 60.0) -> None:
        parts = urllib.parse.urlsplit(url)
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or 80
        self.prefix = parts.path.rstrip("/")
        self.timeout = timeout
        self._host_line = f"Host: {self.host}:{self.port}\r\n".encode()
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._used = 0.0

    async def _connect(self) -> None:
        self.close()
        self._reader, self._writer = await asyncio.open_connection(
            self.host, self.port, limit=2**22
        )

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
        self._reader = self._writer = None

    async def post(
        self, path: str, payload: Any, headers: dict[str, str] | None = None
    ) -> Response:
        return await self.request("POST", path, orjson.dumps(payload), headers)

    async def get(self, path: str) -> Response:
        return await self.request("GET", path)

    async def request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> Response:
        if self._writer is None or time.monotonic() - self._used > self.IDLE_S:
            await self._connect()
        assert self._reader is not None
        assert self._writer is not None
        head = [f"{method} {self.prefix}{path} HTTP/1.1\r\n".encode(), self._host_line]
        if body is not None:
            head.append(b"Content-Type: application/json\r\nContent-Length: %d\r\n" % len(body))
        for name, value in (headers or {}).items():
            head.append(f"{name}: {value}\r\n".encode())
        head.append(b"\r\n")
        if body:
            head.append(body)
        try:
            self._writer.write(b"".join(head))
            await self._writer.drain()
            return await asyncio.wait_for(self._read(method), self.timeout)
        except (
            OSError,
            asyncio.IncompleteReadError,
            asyncio.LimitOverrunError,
            TimeoutError,
        ) as exc:
            self.close()
            raise HttpError(f"{method} {path}: {exc!r}") from exc
        finally:
            self._used = time.monotonic()

    async def _read(self, method: str) -> Response:
        assert self._reader is not None
        reader = self._reader
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        status = int(lines[0].split(b" ", 2)[1])
        length, chunked, close = None, False, False
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"transfer-encoding":
                chunked = b"chunked" in value.lower()
            elif name == b"connection":
                close = b"close" in value.lower()
        if method == "HEAD" or status in (204, 304) or 100 <= status < 200:
            body = b""
        elif chunked:
            parts = []
            while True:
                size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
                if size == 0:
                    await reader.readuntil(b"\r\n")
                    break
                parts.append(await reader.readexactly(size))
                await reader.readexactly(2)
            body = b"".join(parts)
        elif length is not None:
            body = await reader.readexactly(length)
        else:
            body, close = await reader.read(), True
        if close:
            self.close()
        return Response(status, body)


def connections(urls: list[str], count: int) -> list[Http]:
    """`count` connections spread round-robin over the gateways."""
    return [Http(urls[i % len(urls)]) for i in range(count)]


def close_all(conns: Iterable[Http]) -> None:
    for conn in conns:
        conn.close()


def job(
    kind: str = "bench.noop", queue: str = "bench", args: list[Any] | None = None
) -> dict[str, Any]:
    return {"type": kind, "args": args if args is not None else [], "options": {"queue": queue}}


async def fill_queue(
    urls: list[str],
    jobs: int,
    queue: str,
    kind: str = "bench.noop",
    batch: int = 1000,
    parallel: int = 4,
    deadline: Deadline | None = None,
) -> int:
    """Enqueue `jobs` jobs with /jobs/batch (setup for a fetch benchmark); returns how many."""
    deadline = deadline or Deadline(300)
    sizes = [min(batch, jobs - start) for start in range(0, jobs, batch)]
    done = 0

    async def sender(conn: Http) -> None:
        nonlocal done
        while sizes and not deadline.passed:
            size = sizes.pop()
            reply = await conn.post("/ojs/v1/jobs/batch", {"jobs": [job(kind, queue)] * size})
            if reply.status != 201:
                raise HttpError(f"batch enqueue: {reply.status} {reply.body[:300]!r}")
            done += size

    conns = connections(urls, parallel)
    try:
        await asyncio.gather(*(sender(c) for c in conns))
    finally:
        close_all(conns)
    return done


async def queue_stats(url: str, queue: str) -> dict[str, Any]:
    conn = Http(url)
    try:
        reply = await conn.get(f"/ojs/v1/queues/{queue}/stats")
        return dict(reply.json().get("queue") or {}) if reply.ok else {}
    except HttpError:
        return {}
    finally:
        conn.close()


@dataclass
class LoopResult:
    """A closed-loop phase: `concurrency` clients each sending one request after another."""

    concurrency: int
    requested: int
    ok: int
    errors: int
    seconds: float
    latencies: list[float]  # ms, every answered request
    cpu: dict[str, float]
    complete: bool
    first_error: str = ""

    def per_s(self, unit: int = 1) -> float:
        return rate(self.ok * unit, self.seconds)

    def as_dict(self, unit: int = 1, name: str = "per_s") -> dict[str, Any]:
        return {
            "concurrency": self.concurrency,
            "requests": self.ok + self.errors,
            "ok": self.ok,
            "errors": self.errors,
            "seconds": round(self.seconds, 3),
            name: self.per_s(unit),
            "latency_ms": latency_ms(self.latencies),
            "cpu_pct": self.cpu,
            "complete": self.complete,
            **({"first_error": self.first_error} if self.first_error else {}),
        }


async def closed_loop(
    urls: list[str],
    concurrency: int,
    total: int,
    send: Callable[[Http, int], Awaitable[Response]],
    expect: int,
    deadline: Deadline,
    cpu_groups: dict[str, list[int]],
) -> LoopResult:
    """`total` requests (`send(conn, index)`) from `concurrency` connections, each awaited
    before the next; stops early at the deadline. A reply with another status than `expect`
    counts as an error (the first one is kept)."""
    conns = connections(urls, concurrency)
    latencies: list[float] = []
    counts = {"next": 0, "ok": 0, "errors": 0}
    first_error = ""

    async def client(conn: Http) -> None:
        nonlocal first_error
        while counts["next"] < total and not deadline.passed:
            index = counts["next"]
            counts["next"] += 1
            began = time.perf_counter()
            try:
                reply = await send(conn, index)
            except HttpError as exc:
                counts["errors"] += 1
                first_error = first_error or str(exc)
                continue
            latencies.append((time.perf_counter() - began) * 1000)
            if reply.status == expect:
                counts["ok"] += 1
            else:
                counts["errors"] += 1
                first_error = first_error or f"HTTP {reply.status}: {reply.body[:200]!r}"

    try:
        with CpuMeter(cpu_groups) as cpu:
            began = time.perf_counter()
            await asyncio.gather(*(client(c) for c in conns))
            elapsed = time.perf_counter() - began
    finally:
        close_all(conns)
    return LoopResult(
        concurrency=concurrency,
        requested=total,
        ok=counts["ok"],
        errors=counts["errors"],
        seconds=elapsed,
        latencies=latencies,
        cpu=cpu.result,
        complete=counts["ok"] + counts["errors"] >= total,
        first_error=first_error,
    )


def int_list(text: str) -> list[int]:
    return [int(part) for part in text.split(",") if part.strip()]


# ---------------------------------------------------------------- raw JetStream ceiling
CEILING_PAYLOAD = 200  # bytes, as ../shared/bench/jetstream/js_bench.py
CEILING_WINDOW = 4000  # most publishes in flight when pipelined
CEILING_LABELS = {
    "publish_awaited_per_s": "publish, awaited",
    "publish_pipelined_per_s": "publish, pipelined",
    "fetch_ack_per_s": "fetch(100) + ack",
}


async def jetstream_ceiling(nats_url: str, n: int, max_s: float = 60.0) -> dict[str, Any]:
    """nats-py alone against the same nats-server, in this process (same event loop kind):
    publish awaiting each ack; pipelined publish (<= 4,000 acks in flight); fetch(100) + ack
    (not confirmed) from a pull consumer. A file-storage work-queue stream of its own,
    deleted afterwards. Each phase is bounded by `max_s`."""
    import nats
    from nats.js.api import AckPolicy, ConsumerConfig, RetentionPolicy, StorageType, StreamConfig

    tag = secrets.token_hex(3)
    stream, subject = f"CEILING_{tag}", f"ceiling_{tag}.q"
    payload = b"x" * CEILING_PAYLOAD
    nc = await nats.connect(nats_url)
    js = nc.jetstream(publish_async_max_pending=CEILING_WINDOW)
    await js.add_stream(
        StreamConfig(
            name=stream,
            subjects=[subject],
            storage=StorageType.FILE,
            retention=RetentionPolicy.WORK_QUEUE,
        )
    )
    result: dict[str, Any] = {"n": n, "payload_bytes": CEILING_PAYLOAD, "loop": loop_name()}
    try:
        deadline, done, began = Deadline(max_s), 0, time.perf_counter()
        while done < n and (done & 255 or not deadline.passed):
            await js.publish(subject, payload)
            done += 1
        result["publish_awaited_per_s"] = rate(done, time.perf_counter() - began)
        stored = done

        deadline, began = Deadline(max_s), time.perf_counter()
        futures = []
        for i in range(n):
            futures.append(await js.publish_async(subject, payload))
            if i & 1023 == 0 and deadline.passed:
                break
        await asyncio.wait_for(asyncio.gather(*futures), timeout=max(5.0, deadline.left()))
        result["publish_pipelined_per_s"] = rate(len(futures), time.perf_counter() - began)
        stored += len(futures)

        psub = await js.pull_subscribe(
            subject,
            durable=f"ceiling{tag}",
            stream=stream,
            config=ConsumerConfig(ack_policy=AckPolicy.EXPLICIT, max_ack_pending=-1),
        )
        want, got = min(n, stored), 0
        deadline, began = Deadline(max_s), time.perf_counter()
        while got < want and not deadline.passed:
            try:
                msgs = await psub.fetch(min(100, want - got), timeout=2)
            except nats.errors.TimeoutError:
                continue
            for msg in msgs:
                await msg.ack()
            got += len(msgs)
        result["fetch_ack_per_s"] = rate(got, time.perf_counter() - began)
        version = nc.connected_server_version
        result["server_version"] = f"{version.major}.{version.minor}.{version.patch}"
    finally:
        with contextlib.suppress(Exception):
            await js.delete_stream(stream)
        await nc.close()
    return result


async def measure_ceiling(stack: Stack, args: argparse.Namespace) -> dict[str, Any] | None:
    """The ceiling for this run (printed), or None with `--no-ceiling` / no nats URL."""
    if args.no_ceiling or not stack.nats_url:
        say("raw JetStream ceiling: not measured" + ("" if args.no_ceiling else " (no --nats-url)"))
        return None
    n = args.ceiling_n or (2_000 if args.quick else 20_000)
    ceiling = await jetstream_ceiling(stack.nats_url, n)
    say(
        f"raw JetStream ceiling (nats-py {_nats_py_version()}, same nats-server, this run, "
        f"{ceiling['loop']}, {n:,} msgs of {CEILING_PAYLOAD} B):"
    )
    rows(
        [
            ("publish, awaiting each ack", fmt(ceiling.get("publish_awaited_per_s"), "msg/s")),
            ("publish, pipelined (<= 4,000)", fmt(ceiling.get("publish_pipelined_per_s"), "msg/s")),
            ("fetch(100) + ack", fmt(ceiling.get("fetch_ack_per_s"), "msg/s")),
        ]
    )
    ceiling["nats_py"] = _nats_py_version()
    return ceiling


def _nats_py_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("nats-py")
    except PackageNotFoundError:  # pragma: no cover
        return "?"


def ceiling_of(ceiling: dict[str, Any] | None, key: str) -> float | None:
    return ceiling.get(key) if ceiling else None


# ---------------------------------------------------------------- completion counter
class CompletionCounter:
    """A loopback TCP server the no-op job reports to: one line per job, answered by one
    newline, so each job pays one round trip (as the peers' `INCR bench:done` on Redis).
    A non-empty line is the job's enqueue time (`time.time()`): its end-to-end latency is
    recorded. Runs on the benchmark's event loop; the benchmark's process is not counted in
    any RSS figure (as the peers' counter Redis is not, for taskiq-nats)."""

    def __init__(self) -> None:
        self.count = 0
        self.latencies: list[tuple[float, float]] = []  # (monotonic at completion, ms)
        self.port = 0
        self._server: asyncio.Server | None = None

    async def start(self) -> CompletionCounter:
        counter = self

        class Protocol(asyncio.Protocol):
            def connection_made(self, transport: asyncio.BaseTransport) -> None:
                self.transport: asyncio.Transport = transport  # type: ignore[assignment]
                self.buffer = b""

            def data_received(self, data: bytes) -> None:
                self.buffer += data
                *lines, self.buffer = self.buffer.split(b"\n")
                if not lines:
                    return
                counter.count += len(lines)
                for line in lines:
                    if line:
                        with contextlib.suppress(ValueError):
                            sent = float(line)
                            counter.latencies.append(
                                (time.monotonic(), (time.time() - sent) * 1000)
                            )
                self.transport.write(b"\n" * len(lines))

        self._server = await asyncio.get_running_loop().create_server(Protocol, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def wait_for(self, n: int, timeout: float) -> tuple[float | None, float | None, bool]:
        """Poll every 20 ms (as the peers' harness) until `n` completions: perf_counter
        stamps of the first poll that saw one and of the first that saw n, and whether n
        was reached before the timeout."""
        deadline = Deadline(timeout)
        first = last = None
        while not deadline.passed:
            now = time.perf_counter()
            if self.count and first is None:
                first = now
            if self.count >= n:
                return first, now, True
            last = now
            await asyncio.sleep(0.02)
        return first, last, False

    def close(self) -> None:
        if self._server is not None:
            self._server.close()


# ---------------------------------------------------------------- command line
def parser(doc: str | None) -> argparse.ArgumentParser:
    """The options every script shares; the first paragraph of `doc` is the description."""
    text = (doc or "").strip()
    ap = argparse.ArgumentParser(
        description=text.split("\n\n", 1)[0],
        epilog=text.split("\n\n", 1)[1] if "\n\n" in text else None,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument(
        "--quick", action="store_true", help="small sizes, short durations (smoke test)"
    )
    ap.add_argument("--url", help="existing gateway URL(s), comma-separated (default: start them)")
    ap.add_argument("--nats-url", help="with --url: the nats-server to measure the ceiling on")
    ap.add_argument("--gateways", type=int, default=1, help="gateway processes to start")
    ap.add_argument(
        "--gateway-workers",
        type=int,
        default=None,
        help="OJS_WORKERS (uvicorn workers) of each gateway (default: the server's default)",
    )
    ap.add_argument("--ceiling-n", type=int, default=0, help="messages per ceiling phase")
    ap.add_argument("--no-ceiling", action="store_true", help="skip the raw JetStream ceiling")
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory (logs)")
    return ap


def stack_from(args: argparse.Namespace, env: dict[str, str] | None = None) -> Stack:
    urls = [u.strip() for u in args.url.split(",")] if args.url else None
    return Stack(
        gateways=args.gateways,
        gateway_workers=args.gateway_workers,
        env=env,
        urls=urls,
        nats_url=args.nats_url,
        keep=args.keep,
    )


def header(title: str, stack: Stack, args: argparse.Namespace) -> None:
    load = " / ".join(f"{x:.2f}" for x in os.getloadavg())
    say(f"== {title}{'  (--quick)' if args.quick else ''}")
    say(f"   {stack.describe()}; {os.cpu_count()} cores, load average {load}")


def base_result(name: str, stack: Stack, args: argparse.Namespace) -> dict[str, Any]:
    return {
        "benchmark": name,
        "quick": bool(args.quick),
        "gateways": len(stack.urls) if stack.external else stack.gateway_count,
        "gateway_workers": stack.gateway_workers or os.environ.get("OJS_WORKERS"),
        "cores": os.cpu_count(),
        "loadavg_1m": round(os.getloadavg()[0], 2),
    }


def main_guard(body: Callable[[], None]) -> None:
    """Run a script's main: SIGTERM stops its processes like Ctrl-C does."""
    stop_on_sigterm()
    try:
        body()
    except KeyboardInterrupt:
        say("interrupted")
        sys.exit(130)
