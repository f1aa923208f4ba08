"""Collects the runner's final lines so `make test` prints them after pytest's own summary."""

from __future__ import annotations

import pytest

RESULTS: list[str] = []


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if RESULTS:
        terminalreporter.section("official OJS conformance suites")
        for line in RESULTS:
            terminalreporter.write_line(line)
