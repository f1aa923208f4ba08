"""The same unique job sent to two gateway replicas at the same instant: exactly one is created.

Each round fires the job at both replicas concurrently, checks that one answer is 201 and the
other 409 naming the created job, then cancels it, which frees the uniqueness key for the next
round (so the release path is exercised 200 times too).
"""

from __future__ import annotations

import asyncio

import httpx

ROUNDS = 200


async def test_two_replicas_racing_on_one_unique_job_create_exactly_one(gateway_factory):
    a, b = gateway_factory(), gateway_factory()
    job = {"type": "sys.unique", "args": [{"order": "ORD-1"}],
           "options": {"queue": "uniq-sys", "unique": {"keys": ["type", "args"]}}}
    created: list[str] = []
    async with httpx.AsyncClient(base_url=a.url, timeout=30) as ha, \
            httpx.AsyncClient(base_url=b.url, timeout=30) as hb:
        for round_ in range(ROUNDS):
            first, second = await asyncio.gather(ha.post("/ojs/v1/jobs", json=job),
                                                 hb.post("/ojs/v1/jobs", json=job))
            statuses = sorted((first.status_code, second.status_code))
            assert statuses == [201, 409], (round_, first.text, second.text)
            winner, loser = (first, second) if first.status_code == 201 else (second, first)
            job_id = winner.json()["job"]["id"]
            assert loser.json()["error"]["details"]["existing_job_id"] == job_id
            created.append(job_id)
            cancelled = await (ha, hb)[round_ % 2].delete(f"/ojs/v1/jobs/{job_id}")
            assert cancelled.status_code == 200, cancelled.text
        stats = (await ha.get("/ojs/v1/queues/uniq-sys/stats")).json()["queue"]
    assert len(set(created)) == ROUNDS
    assert stats["cancelled"] == ROUNDS
    assert stats["available"] == 0
