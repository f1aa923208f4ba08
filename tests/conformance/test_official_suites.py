"""The official OJS conformance suites, level by level, against a gateway process.

Each implemented level runs with the test-only reset endpoint (the runner POSTs it before every
test, as the suites assume). A level passes only if every one of its tests passes.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conformance.conftest import RESULTS
from tests.support import GatewayProcess

OFFICIAL = Path(__file__).parent / "official"
LEVEL_DIRS = {0: "level-0-core", 1: "level-1-reliable", 2: "level-2-scheduled",
              3: "level-3-workflows", 4: "level-4-advanced"}
EXPECTED_TESTS = {0: 65, 1: 25, 2: 13, 3: 14, 4: 16}
#: Levels this build implements; each must pass in full.
IMPLEMENTED_LEVELS = (0, 1, 2)


@pytest.fixture(scope="module")
def conformance_gateway(nats_server, tmp_path_factory) -> GatewayProcess:  # type: ignore[no-untyped-def]
    from tests.support import namespace
    gateway = GatewayProcess(nats_server.url, namespace(), env={"OJS_ENABLE_TEST_RESET": "1"},
                             log_dir=tmp_path_factory.mktemp("conformance"))
    gateway.start()
    yield gateway
    gateway.stop()


@pytest.mark.timeout(900)
@pytest.mark.parametrize("level", IMPLEMENTED_LEVELS)
def test_level_passes_in_full(level: int, conformance_gateway: GatewayProcess) -> None:
    run: Callable[..., subprocess.CompletedProcess[str]] = subprocess.run
    result = run(
        [sys.executable, str(OFFICIAL / "ojs_conformance.py"), "--url", conformance_gateway.url,
         "--suites", str(OFFICIAL / "suites" / LEVEL_DIRS[level]),
         "--reset-url", conformance_gateway.url + "/ojs/v1/admin/reset"],
        capture_output=True, text=True, timeout=880,
    )
    final = result.stdout.strip().splitlines()[-1] if result.stdout.strip() else "(no output)"
    RESULTS.append(f"level {level}: {final}")
    assert final == f"{EXPECTED_TESTS[level]} passed, 0 failed", result.stdout[-6000:]
