"""Run what the chart renders as local processes: its NATS configuration as a 3-node cluster on
127.0.0.1, and its gateway container (entrypoint, args, env) as an `ojs-nats` process.

Only addresses, ports and file paths are rewritten, each by a named rule, and `rewrite_nats`
returns the list of what it changed so a test can check nothing else was touched.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from ojs_nats.embedded import READY_LINE, find_binary, free_port
from tests.support import ROOT

# Tokens NATS reads unquoted (environment references, sizes with units) and the JSON-safe
# stand-in used while the configuration is edited as a dict.
_BARE = re.compile(r'(?<=": )(\$[A-Za-z_][A-Za-z0-9_]*|\d+(?:[KMGT]i?B?))(?=,?\s*$)', re.M)
_MARKED = re.compile(r'"@bare:([^"]*)"')


def parse_nats_conf(text: str) -> dict[str, Any]:
    return dict(json.loads(_BARE.sub(r'"@bare:\1"', text)))


def dump_nats_conf(conf: dict[str, Any]) -> str:
    return _MARKED.sub(r"\1", json.dumps(conf, indent=2))


@dataclass
class NodePorts:
    client: int = field(default_factory=free_port)
    route: int = field(default_factory=free_port)
    monitor: int = field(default_factory=free_port)


def _local(address: str, port: int) -> str:
    host, _ = address.rsplit(":", 1)
    assert host == "0.0.0.0", f"expected an all-interfaces listener, got {address}"
    return f"127.0.0.1:{port}"


def rewrite_nats(conf: dict[str, Any], node: int, ports: list[NodePorts],
                 data_dir: Path) -> tuple[dict[str, Any], list[str]]:
    """Node `node`'s configuration on 127.0.0.1: (new conf, the keys that were changed)."""
    out = json.loads(json.dumps(conf))
    changed = []
    out["listen"] = _local(conf["listen"], ports[node].client)
    out["http"] = _local(conf["http"], ports[node].monitor)
    out["jetstream"]["store_dir"] = str(data_dir / f"node{node}")
    out["pid_file"] = str(data_dir / f"node{node}.pid")
    changed += ["listen", "http", "jetstream.store_dir", "pid_file"]
    if "cluster" in conf:
        cluster = out["cluster"]
        cluster["listen"] = _local(conf["cluster"]["listen"], ports[node].route)
        # A route names pod <statefulset>-<k> through the headless Service: node k here.
        cluster["routes"] = []
        for url in conf["cluster"]["routes"]:
            match = re.fullmatch(r"nats://[a-z0-9-]+-(\d+)\.[a-z0-9.-]+:\d+", url)
            assert match, f"unexpected route {url}"
            cluster["routes"].append(f"nats://127.0.0.1:{ports[int(match[1])].route}")
        changed += ["cluster.listen", "cluster.routes"]
    return out, changed


def check_config(path: Path, pod_name: str) -> subprocess.CompletedProcess[str]:
    """`nats-server -t`: parse and check a configuration file without starting."""
    return subprocess.run([find_binary(), "-t", "-c", str(path)], capture_output=True,
                          text=True, env={**os.environ, "POD_NAME": pod_name}, timeout=30)


class NatsNode:
    """One nats-server started from a configuration file, as the StatefulSet's container is."""

    def __init__(self, conf_path: Path, pod_name: str, log_path: Path) -> None:
        self.conf_path, self.pod_name, self.log_path = conf_path, pod_name, log_path
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> NatsNode:
        log = self.log_path.open("ab")
        # The container runs `nats-server --config /etc/nats-config/nats.conf` with POD_NAME set.
        self.process = subprocess.Popen(
            [find_binary(), "--config", str(self.conf_path)],
            env={**os.environ, "POD_NAME": self.pod_name}, stdout=log, stderr=log,
            start_new_session=True)
        return self

    def wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process is not None
            assert self.process.poll() is None, self.log()
            if READY_LINE in self.log():
                return
            time.sleep(0.05)
        raise AssertionError(f"{self.pod_name} not ready:\n{self.log()[-3000:]}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()


def wait_http(url: str, timeout: float, process: subprocess.Popen[bytes] | None = None,
              log: Path | None = None) -> None:
    """Poll until GET url answers 200, as a Kubernetes HTTP probe would."""
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise AssertionError(f"process exited: {log.read_text() if log else ''}")
        try:
            response = httpx.get(url, timeout=2)
            if response.status_code == 200:
                return
            last = f"{response.status_code} {response.text[:200]}"
        except httpx.HTTPError as exc:
            last = repr(exc)
        time.sleep(0.1)
    raise AssertionError(f"{url} not ready in {timeout}s: {last}")


def entrypoint() -> list[str]:
    """The image's ENTRYPOINT, read from deploy/Dockerfile (exec form)."""
    text = (ROOT / "deploy" / "Dockerfile").read_text()
    found = re.findall(r"^ENTRYPOINT\s+(\[.*\])\s*$", text, flags=re.M)
    assert len(found) == 1, "deploy/Dockerfile must have one exec-form ENTRYPOINT"
    return list(json.loads(found[0]))


def local_command(container: dict[str, Any]) -> list[str]:
    """The container's command line, with the image's console script taken from this venv."""
    command = container.get("command") or entrypoint()
    program = Path(sys.executable).parent / command[0]
    assert program.exists(), f"{command[0]} is not a console script of this project"
    return [str(program), *command[1:], *container.get("args", [])]


def local_env(rendered: dict[str, str], rewrites: dict[str, str]) -> dict[str, str]:
    """The rendered env with only the named variables rewritten; nothing of the test's own
    environment that the gateway reads (OJS_*, NATS_URL) leaks in."""
    assert rewrites.keys() <= rendered.keys()
    base = {k: v for k, v in os.environ.items() if not k.startswith(("OJS_", "NATS_"))}
    return {**base, **rendered, **rewrites}
