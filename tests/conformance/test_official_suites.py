"""The official OJS conformance suites, all levels in one run of the runner, against a gateway
process.

The runner POSTs the test-only reset endpoint before every test, as the suites assume. Every
level must pass in full; the runner's per-level summary and its final line are printed after
pytest's summary.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.conformance.conftest import RESULTS
from tests.support import GatewayProcess, namespace

OFFICIAL = Path(__file__).parent / "official"
EXPECTED_TESTS = {0: 65, 1: 25, 2: 13, 3: 14, 4: 16}
_LEVEL_ROW = re.compile(r"^\s*(\d)\s+\w+\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s+(\w+)\s*$")


@pytest.fixture(scope="module")
def conformance_gateway(nats_server, tmp_path_factory) -> Iterator[GatewayProcess]:  # type: ignore[no-untyped-def]
    gateway = GatewayProcess(nats_server.url, namespace(), env={"OJS_ENABLE_TEST_RESET": "1"},
                             log_dir=tmp_path_factory.mktemp("conformance"))
    gateway.start()
    yield gateway
    gateway.stop()


@pytest.mark.timeout(1500)
def test_every_level_passes_in_full_in_one_run(conformance_gateway: GatewayProcess) -> None:
    run: Callable[..., subprocess.CompletedProcess[str]] = subprocess.run
    result = run(
        [sys.executable, str(OFFICIAL / "ojs_conformance.py"), "--url", conformance_gateway.url,
         "--suites", str(OFFICIAL / "suites"),
         "--reset-url", conformance_gateway.url + "/ojs/v1/admin/reset"],
        capture_output=True, text=True, timeout=1450,
    )
    lines = result.stdout.strip().splitlines()
    levels: dict[int, tuple[int, int]] = {}
    for line in lines:
        row = _LEVEL_ROW.match(line)
        if row:
            levels[int(row.group(1))] = (int(row.group(3)), int(row.group(2)))
    for level, (passed, total) in sorted(levels.items()):
        RESULTS.append(f"level {level}: {passed}/{total}")
    final = lines[-1] if lines else "(no output)"
    RESULTS.append(f"levels 0-4 in one run: {final}")
    expected_total = sum(EXPECTED_TESTS.values())
    assert levels == {level: (n, n) for level, n in EXPECTED_TESTS.items()}, result.stdout[-6000:]
    assert final == f"{expected_total} passed, 0 failed", result.stdout[-6000:]
