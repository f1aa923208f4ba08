"""Chart tests: the offline helm binaries, installed once per session."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.chart import helm


@pytest.fixture(scope="session", autouse=True)
def helm_tools() -> Path:
    return helm.tools()
