"""The benchmark scripts still run: S1 and S3 with --quick and tiny sizes, each printing
exactly one parseable JSON line with a positive throughput. No speed is asserted."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.support import ROOT

pytestmark = pytest.mark.slow

RUNS = {
    "http_enqueue": (["--concurrency", "1,4", "--requests", "60"], "req_per_s"),
    "fetch_ack": (["--jobs", "100", "--clients", "2"], "jobs_per_s"),
}


@pytest.mark.parametrize("script", sorted(RUNS))
def test_benchmark_prints_one_json_line_with_throughput(script: str) -> None:
    extra, key = RUNS[script]
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / f"{script}.py"), "--quick",
         "--ceiling-n", "200", *extra],
        cwd=ROOT, capture_output=True, text=True, timeout=100, check=False)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    assert len(lines) == 1, done.stdout
    result = json.loads(lines[0])
    assert result["phases"]
    for phase in result["phases"]:
        assert phase[key] > 0, phase
        assert phase["errors"] == 0, phase
    assert result["ceiling"]["publish_awaited_per_s"] > 0
