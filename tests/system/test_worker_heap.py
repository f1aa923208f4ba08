"""A worker process the CLI starts keeps its start-up heap out of the garbage collector's walks,
as the gateway does (`ojs_nats.heap`): the collector took ~9% of a busy worker's CPU."""

from __future__ import annotations

import httpx
import pytest

from ojs_nats import heap
from tests.system.test_worker_shutdown import push, wait_states

TARGET = "tests.system.heap_worker:worker"


@pytest.mark.parametrize("transport", ["http", "direct"])
async def test_a_cli_worker_freezes_its_start_up_heap(gateway_factory, worker_factory, transport):
    gateway = gateway_factory()
    queue = f"heap-{transport}"
    if transport == "direct":
        worker_factory(["http://127.0.0.1:9"], [queue], target=TARGET, args=["--direct"],
                       NATS_URL=gateway.nats_url, OJS_NAMESPACE=gateway.namespace)
    else:
        worker_factory([gateway.url], [queue], target=TARGET)
    async with httpx.AsyncClient(base_url=gateway.url, timeout=10) as http:
        job_id = await push(http, queue, "test.gc_settings")
        [job] = await wait_states(http, [job_id], {"completed"}, timeout=15)
    assert job["result"]["frozen"] > 1000  # the libraries, the app, the connection
    assert job["result"]["threshold"][0] == heap.YOUNG_THRESHOLD
