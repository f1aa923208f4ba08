"""`ojs-nats dev` (behind `make run`) serves, and Ctrl-C stops both of its processes."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import httpx

from ojs_nats.embedded import free_port


def test_dev_serves_and_stops_both_processes_on_ctrl_c(tmp_path):
    port, nats_port = free_port(), free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "ojs_nats.cli", "dev", "--port", str(port),
         "--nats-port", str(nats_port), "--data-dir", str(tmp_path / "data")],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/ojs/manifest", timeout=1).is_success:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        job = httpx.post(f"http://127.0.0.1:{port}/ojs/v1/jobs",
                         json={"type": "cli.test", "args": []}).json()["job"]
        assert job["state"] == "available"
        assert (tmp_path / "data" / "jetstream").is_dir()
        process.send_signal(signal.SIGINT)
        output, _ = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, output
    assert f"gateway on http://127.0.0.1:{port}" in output
    assert f"nats-server nats://127.0.0.1:{nats_port}" in output
    assert "stopped" in output
    nats_alive = subprocess.run(["pgrep", "-f", f"nats-server.*-p {nats_port}"],
                                capture_output=True).returncode == 0
    assert not nats_alive, "the child nats-server outlived `ojs-nats dev`"
