"""Cron on three gateway replicas: exactly one job per tick, even when a replica is killed."""

from __future__ import annotations

import collections
import time

import httpx

from ojs_nats.model import ids


def test_per_second_cron_on_three_replicas_enqueues_exactly_one_job_per_tick(gateway_factory):
    gateways = [gateway_factory() for _ in range(3)]
    http = httpx.Client(timeout=10)
    base = gateways[0].url
    created = http.post(base + "/ojs/v1/cron", json={
        "name": "heartbeat.every-second", "expression": "* * * * * *", "overlap_policy": "allow",
        "job_template": {"type": "cron.replica", "args": [], "options": {"queue": "per-second"}},
    })
    assert created.status_code == 201, created.text
    started = ids.now_ms()
    time.sleep(10)
    gateways[1].kill()  # SIGKILL a replica mid-run; the others carry on
    time.sleep(5)
    gateways[1].start()  # and bring it back
    time.sleep(15)
    assert http.delete(gateways[2].url + "/ojs/v1/cron/heartbeat.every-second").is_success
    stopped = ids.now_ms()
    time.sleep(12)  # a tick held by the killed replica is redelivered within 10 s

    ticks: collections.Counter[int] = collections.Counter()
    while True:
        batch = http.post(base + "/ojs/v1/workers/fetch",
                          json={"queues": ["per-second"], "count": 100}).json()["jobs"]
        if not batch:
            break
        for job in batch:
            ticks[ids.parse_ts(job["meta"]["cron_triggered_at"])] += 1
    duplicates = {t: n for t, n in ticks.items() if n > 1}
    assert not duplicates, f"ticks enqueued more than once: {duplicates}"
    expected = set(range((started // 1000 + 1) * 1000, stopped - 1000, 1000))
    missing = sorted(expected - set(ticks))
    assert not missing, f"{len(missing)} ticks without a job: {missing[:5]}"
    assert len(ticks) >= 28, len(ticks)
