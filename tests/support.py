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
