"""Operator fixtures: kmock as the Kubernetes API (the only stand-in), real gateway processes on
a real nats-server, and the operator itself run by kopf's KopfRunner in a thread.

The operator is started with the command line `ojs-nats-operator` builds (`cli.kopf_args`), so
these tests run the same handlers, options and JSON logging as the container does.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import warnings
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import kmock as kmock_lib
import kubernetes
import pytest
from kopf.testing import KopfRunner
from ojs_operator import cli, crds
from ojs_operator.settings import Settings

from ojs_nats.embedded import free_port
from tests.operator import cluster
from tests.support import GatewayProcess


@pytest.fixture
def kmock_options() -> dict[str, Any]:
    """Every operator test talks to our ApiServer flavour of kmock's emulator."""
    return {"cls": cluster.ApiServer}


@pytest.fixture
def api_server(
    kmock: kmock_lib.KubernetesEmulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> kmock_lib.KubernetesEmulator:
    """kmock with the built-in resources, our two CRDs, KEDA's ScaledObject, a kubeconfig."""
    with warnings.catch_warnings():  # kmock 0.8 reads its bundle with a deprecated call
        warnings.simplefilter("ignore", DeprecationWarning)
        kmock.resources.load_bundled()
    for crd in crds.all_crds():
        cluster.register(kmock, crd)
    cluster.register_keda(kmock)
    kubeconfig = cluster.write_kubeconfig(tmp_path / "kubeconfig", str(kmock.url))
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
    # kopf's login reads the client's default path, fixed when `kubernetes` was imported.
    monkeypatch.setattr(
        kubernetes.config.kube_config, "KUBE_CONFIG_DEFAULT_LOCATION", str(kubeconfig)
    )
    return kmock


@pytest.fixture
async def api(api_server: kmock_lib.KubernetesEmulator) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the emulated API server (what kubectl would be)."""
    async with httpx.AsyncClient(base_url=str(api_server.url).rstrip("/"), timeout=10) as http:
        yield http


@pytest.fixture
def gateway(gateway_factory: Callable[..., GatewayProcess]) -> GatewayProcess:
    return gateway_factory()


@pytest.fixture
async def ojs(gateway: GatewayProcess) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the real gateway (what checks the operator's effect)."""
    async with httpx.AsyncClient(base_url=gateway.url + "/ojs/v1", timeout=10) as http:
        yield http


@dataclasses.dataclass
class Operator:
    runner: KopfRunner
    liveness_url: str

    @property
    def output(self) -> str:
        return self.runner.output


OperatorFactory = Callable[..., contextlib.AbstractAsyncContextManager[Operator]]


@pytest.fixture
def operator(
    api_server: kmock_lib.KubernetesEmulator,
    monkeypatch: pytest.MonkeyPatch,
) -> OperatorFactory:
    """`async with operator(gateway_url, **env) as op:` runs the operator until the block ends;
    then it must have stopped cleanly (exit code 0, no exception)."""

    @contextlib.asynccontextmanager
    async def run(gateway_url: str, **env: str) -> AsyncIterator[Operator]:
        settings = {"OJS_GATEWAY_URL": gateway_url, "OJS_OPERATOR_RESYNC_S": "1", **env}
        for name, value in settings.items():
            monkeypatch.setenv(name, value)
        port = free_port()
        # --all-namespaces: kmock cannot list namespaces, which --namespace needs.
        args = ["--standalone", "--all-namespaces", f"--liveness=http://127.0.0.1:{port}/healthz"]
        runner = KopfRunner(cli.kopf_args(args, Settings.from_env()), timeout=30)
        runner.__enter__()  # starts the operator's thread; returns at once
        op = Operator(runner, f"http://127.0.0.1:{port}/healthz")
        try:
            await cluster.eventually(lambda: _alive(op.liveness_url), timeout=20)
            yield op
        finally:
            # Joining the operator's thread blocks: never on the loop that serves kmock.
            await asyncio.to_thread(runner.__exit__, None, None, None)
        assert runner.exit_code == 0, runner.output[-5000:]
        assert runner.exception is None, runner.output[-5000:]

    return run


async def _alive(url: str) -> bool:
    try:
        async with httpx.AsyncClient(timeout=1) as http:
            return (await http.get(url)).status_code == 200
    except httpx.HTTPError:
        return False
