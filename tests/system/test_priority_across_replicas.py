"""Priority order holds across replicas: jobs pushed through one gateway and fetched one at a
time through another come out highest priority first, FIFO within a priority."""

from __future__ import annotations

import random

import httpx


async def test_fetches_alternating_between_replicas_follow_priority_then_fifo(gateway_factory):
    a, b = gateway_factory(), gateway_factory()
    rng = random.Random(5)
    priorities = [rng.choice([-100, -10, 0, 0, 10, 100]) for _ in range(60)]
    async with httpx.AsyncClient(base_url=a.url) as ha, httpx.AsyncClient(base_url=b.url) as hb:
        for n, priority in enumerate(priorities):
            response = await (ha, hb)[n % 2].post("/ojs/v1/jobs", json={
                "type": "sys.prio", "args": [n],
                "options": {"queue": "prio-sys", "priority": priority}})
            assert response.status_code == 201, response.text
        order = []
        for n in range(len(priorities)):
            jobs = (await (hb, ha)[n % 2].post("/ojs/v1/workers/fetch", json={
                "queues": ["prio-sys"]})).json()["jobs"]
            order += [(j["priority"], j["args"][0]) for j in jobs]
    assert order == sorted(order, key=lambda pn: (-pn[0], pn[1]))
    assert len(order) == len(priorities)
