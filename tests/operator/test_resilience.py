"""The operator when the gateway is down, and the operator as its container runs it.

An unreachable gateway is a condition (Ready False, Degraded True, reason GatewayUnavailable)
and retries with growing delays, never an exit: the liveness endpoint keeps answering, and
once a gateway listens the queue is configured. A deletion waits (the finalizer holds) until
the gateway can forget the queue. `ojs-nats-operator` itself: JSON logs, liveness, SIGTERM.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import sys
from pathlib import Path

import httpx
import pytest
from ojs_operator import cli

from ojs_nats.embedded import NatsServer, free_port
from tests.operator import cluster
from tests.operator.cluster import NS, QUEUES, condition, current, eventually, url_of
from tests.support import GatewayProcess, namespace


async def test_unreachable_gateway_is_a_condition_and_retried_with_backoff_not_a_crash(
    api_server, api: httpx.AsyncClient, nats_server: NatsServer, tmp_path: Path, operator
) -> None:
    port, ns, name = free_port(), namespace(), "orders-" + namespace()
    url = f"http://127.0.0.1:{port}"
    obj = lambda: current(api_server, QUEUES, name)  # noqa: E731
    spec = {"rateLimit": {"concurrency": 3}}
    async with operator(url) as op, httpx.AsyncClient(base_url=url + "/ojs/v1") as ojs:
        assert (await api.post(url_of(QUEUES, NS), json=cluster.queue(name, spec))).is_success
        await eventually(lambda: condition(obj(), "Ready").get("reason") == "GatewayUnavailable")
        assert condition(obj(), "Ready")["status"] == "False"
        assert condition(obj(), "Degraded")["status"] == "True"
        await asyncio.sleep(3)  # a few retries later the operator is still alive
        assert (await httpx.AsyncClient().get(op.liveness_url)).status_code == 200

        gateway = GatewayProcess(nats_server.url, ns, port=port, log_dir=tmp_path)
        await asyncio.to_thread(gateway.start)
        try:
            await eventually(lambda: _concurrency(ojs, name), timeout=20)
            await eventually(lambda: condition(obj(), "Ready").get("status") == "True")
            assert condition(obj(), "Degraded")["status"] == "False"

            # Deleting while the gateway is down: the finalizer keeps the object until the
            # gateway is back and the queue removed.
            await asyncio.to_thread(gateway.kill)
            assert (await api.delete(url_of(QUEUES, NS, name))).status_code == 200
            await asyncio.sleep(2)
            assert obj() is not None
            assert obj()["metadata"].get("deletionTimestamp")
            gateway = GatewayProcess(nats_server.url, ns, port=port, log_dir=tmp_path)
            await asyncio.to_thread(gateway.start)
            await eventually(lambda: obj() is None, timeout=30)
            assert (await ojs.get(f"/queues/{name}/config")).status_code == 404
        finally:
            await asyncio.to_thread(gateway.kill)

    # the retries back off: 1 s, 2 s, 4 s, ... The change handler and the resync timer share
    # the resource's failure count, so the sequence runs over both kinds of line, in log order.
    pattern = r"GatewayUnavailable: .*\(next attempt in ([0-9.]+)s\)"
    delays = [float(d) for d in re.findall(pattern, op.output)]
    assert delays[:3] == [1.0, 2.0, 4.0], delays


async def _concurrency(ojs: httpx.AsyncClient, queue: str) -> bool:
    try:
        response = await ojs.get(f"/queues/{queue}/config")
    except httpx.HTTPError:
        return False
    return response.status_code == 200 and response.json()["concurrency"] == 3


async def test_console_script_logs_json_serves_liveness_and_exits_cleanly_on_sigterm(
    api_server,
    api: httpx.AsyncClient,
    ojs: httpx.AsyncClient,
    gateway: GatewayProcess,
    tmp_path: Path,
) -> None:
    port, name = free_port(), "audit-" + namespace()
    script = Path(sys.executable).parent / "ojs-nats-operator"
    log = tmp_path / "operator.log"
    env = {**os.environ, "OJS_GATEWAY_URL": gateway.url, "OJS_OPERATOR_RESYNC_S": "1"}
    args = ["--standalone", "--all-namespaces", f"--liveness=http://127.0.0.1:{port}/healthz"]
    with log.open("wb") as out:
        process = await asyncio.create_subprocess_exec(
            str(script), *args, env=env, stdout=out, stderr=out
        )
    try:
        async with httpx.AsyncClient(timeout=1) as probe:
            await eventually(lambda: _answers(probe, f"http://127.0.0.1:{port}/healthz"), 30)
        assert (await api.post(url_of(QUEUES, NS), json=cluster.queue(name, {}))).is_success
        await eventually(lambda: _exists(ojs, name))
        process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(process.wait(), timeout=30) == 0
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    records = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
    assert records
    assert all("message" in r and "severity" in r for r in records)
    configured = [r for r in records if r["message"].startswith(f"queue {name} configured")]
    assert configured
    assert configured[0]["object"]["name"] == name


async def _answers(probe: httpx.AsyncClient, url: str) -> bool:
    try:
        return (await probe.get(url)).status_code == 200
    except httpx.HTTPError:
        return False


async def _exists(ojs: httpx.AsyncClient, queue: str) -> bool:
    return (await ojs.get(f"/queues/{queue}/config")).status_code == 200


def test_bad_settings_stop_the_console_script_before_kopf_starts(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("OJS_GATEWAY_URL", "gateway:8080")
    assert cli.main(["--standalone"]) == 2
    assert "OJS_GATEWAY_URL must be an http(s) URL" in capsys.readouterr().err


async def test_a_missing_deployment_or_keda_setting_is_a_condition_and_the_queue_still_configured(
    api_server, api: httpx.AsyncClient, ojs: httpx.AsyncClient, gateway: GatewayProcess, operator
) -> None:
    names = {mode: f"{mode}-" + namespace() for mode in ("operator", "keda")}
    async with operator(gateway.url):  # no OJS_NATS_MONITOR_URL
        for mode, name in names.items():
            autoscaling = {
                "mode": mode,
                "targetRef": {"name": "absent"},
                "pollingIntervalSeconds": 1,
            }
            spec = {"paused": True, "autoscaling": autoscaling}
            assert (await api.post(url_of(QUEUES, NS), json=cluster.queue(name, spec))).is_success
        for mode, reason in (("operator", "TargetNotFound"), ("keda", "KedaNotConfigured")):
            obj = lambda name=names[mode]: current(api_server, QUEUES, name)  # noqa: E731
            await eventually(lambda obj=obj, r=reason: condition(obj(), "Ready").get("reason") == r)
            assert condition(obj(), "Degraded")["status"] == "True"
            config = (await ojs.get(f"/queues/{names[mode]}/config")).json()
            assert config["paused"] is True
        assert current(api_server, "keda.sh/v1alpha1/scaledobjects", names["keda"]) is None
        for name in names.values():
            assert (await api.delete(url_of(QUEUES, NS, name))).status_code == 200
            await eventually(lambda name=name: current(api_server, QUEUES, name) is None)
