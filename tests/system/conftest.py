"""System-test fixtures: worker processes, and a 3-node JetStream cluster for failover tests.

The cluster is per test (tests kill its nodes); worker processes are stopped at the end of the
test that started them, whatever state they are in.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.support import EXAMPLE_WORKER, GatewayProcess, NatsCluster, WorkerProcess, namespace

#: Measured figures (the failover test's), printed after pytest's summary.
FIGURES: list[str] = []


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if FIGURES:
        terminalreporter.section("failover figures")
        for line in FIGURES:
            terminalreporter.write_line(line)


@pytest.fixture
def worker_factory(tmp_path: Path) -> Iterator[Callable[..., WorkerProcess]]:
    """`start(urls, queues, target=EXAMPLE_WORKER, args=[...], **env)` -> a running worker."""
    started: list[WorkerProcess] = []

    def start(urls: list[str], queues: list[str], target: str = EXAMPLE_WORKER,
              args: list[str] | None = None, **env: str) -> WorkerProcess:
        worker = WorkerProcess(target, urls, queues, env=env, log_dir=tmp_path, args=args)
        started.append(worker.start())
        return worker

    yield start
    for worker in started:
        worker.kill()


@pytest.fixture
def nats_cluster(tmp_path: Path) -> Iterator[NatsCluster]:
    cluster = NatsCluster(tmp_path / "cluster")
    cluster.start()
    yield cluster
    cluster.stop()


@pytest.fixture
def cluster_gateway_factory(nats_cluster: NatsCluster,
                            tmp_path: Path) -> Iterator[Callable[..., GatewayProcess]]:
    """Gateways on the cluster (all node URLs, replicas 3, one shared namespace)."""
    started: list[GatewayProcess] = []
    shared = namespace()

    def start(**env: str) -> GatewayProcess:
        gateway = GatewayProcess(",".join(nats_cluster.urls), shared,
                                 env={"OJS_REPLICAS": "3", **env}, log_dir=tmp_path)
        started.append(gateway.start())
        return gateway

    yield start
    for gateway in started:
        gateway.kill()
