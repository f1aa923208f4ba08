"""Test helpers: gateway processes and unique namespaces (real processes, never mocks)."""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from ojs_nats.embedded import free_port

ROOT = Path(__file__).resolve().parent.parent
#: The example worker with the standard conformance handlers.
EXAMPLE_WORKER = "ojs_nats.worker.example:worker"


def namespace() -> str:
    """A fresh stream/subject namespace, so tests sharing a nats-server never see each other."""
    return "t" + secrets.token_hex(5)


class GatewayProcess:
    """`ojs-nats serve` as a child process, as a deployment would run it."""

    def __init__(self, nats_url: str, namespace: str, port: int | None = None,
                 env: dict[str, str] | None = None, log_dir: Path | None = None) -> None:
        self.nats_url = nats_url
        self.namespace = namespace
        self.port = port or free_port()
        self.extra_env = env or {}
        self.log_path = (log_dir or Path("/tmp")) / f"gateway-{namespace}-{self.port}.log"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30.0) -> GatewayProcess:
        env = {**os.environ, "NATS_URL": self.nats_url, "OJS_NAMESPACE": self.namespace,
               "OJS_PORT": str(self.port), "OJS_HOST": "127.0.0.1", "OJS_LOG_LEVEL": "warning",
               # One process per gateway in tests (the default is one per core), so a test's
               # replicas are exactly the processes it started.
               "OJS_WORKERS": "1",
               **self.extra_env}
        log = self.log_path.open("ab")
        self.process = subprocess.Popen([sys.executable, "-m", "ojs_nats.cli", "serve"],
                                        env=env, stdout=log, stderr=log, cwd=ROOT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"gateway exited early; log:\n{self.log_path.read_text()}")
            try:
                if httpx.get(self.url + "/ready", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"gateway not ready in {timeout}s; log:\n{self.log_path.read_text()}")

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def stop(self, timeout: float = 15.0) -> int | None:
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode


class WorkerProcess:
    """`ojs-nats worker MODULE:OBJECT` as a child process, ready once it logged "started"."""

    def __init__(self, target: str, urls: list[str], queues: list[str],
                 env: dict[str, str] | None = None, log_dir: Path | None = None,
                 args: list[str] | None = None) -> None:
        self.target = target
        self.urls = urls
        self.queues = queues
        self.extra_env = env or {}
        self.args = args or []
        self.log_path = (log_dir or Path("/tmp")) / f"worker-{secrets.token_hex(4)}.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.worker_id = ""

    def start(self, timeout: float = 30.0) -> WorkerProcess:
        env = {**os.environ, "OJS_URL": ",".join(self.urls), "OJS_QUEUES": ",".join(self.queues),
               "OJS_LOG_LEVEL": "info", **self.extra_env}
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "ojs_nats.cli", "worker", self.target, *self.args],
            env=env, stdout=log, stderr=log, cwd=ROOT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in self.log_text().splitlines():
                if " started: queues " in line:
                    self.worker_id = line.split("worker ", 2)[-1].split(" ", 1)[0]
                    return self
            if self.process.poll() is not None:
                raise RuntimeError(f"worker exited early; log:\n{self.log_text()}")
            time.sleep(0.05)
        raise RuntimeError(f"worker not started in {timeout}s; log:\n{self.log_text()}")

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def signal(self, sig: int) -> None:
        assert self.process is not None
        self.process.send_signal(sig)

    def wait(self, timeout: float) -> int:
        assert self.process is not None
        return self.process.wait(timeout)

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()


class NatsCluster:
    """Three (or more) nats-server processes forming one JetStream cluster on 127.0.0.1."""

    def __init__(self, base_dir: Path, size: int = 3, name: str = "ojs-test") -> None:
        from ojs_nats.embedded import NatsServer

        cluster_ports = [free_port() for _ in range(size)]
        routes = [f"nats://127.0.0.1:{port}" for port in cluster_ports]
        self.nodes = [
            NatsServer(base_dir / f"node{i}", port=free_port(), monitor_port=free_port(),
                       name=f"{name}-{i}", cluster_name=name, cluster_port=cluster_ports[i],
                       routes=routes)
            for i in range(size)]

    @property
    def urls(self) -> list[str]:
        return [node.url for node in self.nodes]

    def start(self, timeout: float = 60.0) -> NatsCluster:
        for node in self.nodes:
            node.start()
        self.wait_healthy(timeout)
        return self

    def wait_healthy(self, timeout: float = 60.0) -> None:
        """Until every running node reports JetStream healthy (a meta leader, current)."""
        deadline = time.monotonic() + timeout
        pending = [n for n in self.nodes if n.running]
        while pending and time.monotonic() < deadline:
            pending = [n for n in pending if not _healthy(n.monitor_port)]
            time.sleep(0.1)
        if pending:
            raise RuntimeError(f"nodes {[n.name for n in pending]} not healthy in {timeout}s")

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()


def _healthy(monitor_port: int | None) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{monitor_port}/healthz", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False
