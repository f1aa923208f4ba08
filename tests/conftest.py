"""Shared fixtures: a real nats-server per session, gateways in-process or as processes.

Markers are applied by directory (they select tests, they never skip them). A missing
nats-server binary is an error, not a skip.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import httpx
import pytest

from ojs_nats.api.app import create_app
from ojs_nats.config import Settings
from ojs_nats.embedded import NatsServer
from tests.support import GatewayProcess, namespace

_MARKS = {
    "integration": ["nats"],
    "system": ["nats", "system", "slow"],
    "conformance": ["nats", "conformance", "slow"],
    "operator": ["nats", "operator", "slow"],
}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        parts = Path(str(item.fspath)).parts
        for directory, marks in _MARKS.items():
            if directory in parts:
                for mark in marks:
                    item.add_marker(getattr(pytest.mark, mark))


@pytest.fixture(scope="session")
def nats_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NatsServer]:
    server = NatsServer(tmp_path_factory.mktemp("nats"), name="ojs-test")
    server.start()
    yield server
    server.stop()


@pytest.fixture
def settings(nats_server: NatsServer) -> Settings:
    return Settings(nats_urls=(nats_server.url,), namespace=namespace(),
                    enable_test_reset=True)


@pytest.fixture
async def client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """The gateway app in-process (lifespan included) behind an httpx client."""
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as http:
            http.app = app  # type: ignore[attr-defined]
            yield http


@pytest.fixture
def gateway_factory(nats_server: NatsServer,
                    tmp_path: Path) -> Iterator[Callable[..., GatewayProcess]]:
    """Start gateway processes (same namespace unless told otherwise); all stopped at the end."""
    started: list[GatewayProcess] = []
    shared = namespace()

    def start(ns: str | None = None, **env: str) -> GatewayProcess:
        gateway = GatewayProcess(nats_server.url, ns or shared, env=env, log_dir=tmp_path)
        started.append(gateway.start())
        return gateway

    yield start
    for gateway in started:
        gateway.kill()
