"""Signals of a worker process (ojs-graceful-shutdown.md §4, ojs-worker-protocol.md §9).

SIGTERM/SIGINT start the graceful shutdown, a second one exits at once; SIGTSTP quiets the
worker, SIGCONT resumes it. A watchdog thread ends a shutdown that hangs (a gateway that never
answers) `WATCHDOG_MARGIN_S` after the grace period.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import threading
from collections.abc import Callable

log = logging.getLogger(__name__)

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
#: Time allowed after the grace period for handing jobs back and deregistering.
WATCHDOG_MARGIN_S = 10.0
#: Exit status when the watchdog has to end a drain that did not finish.
EXIT_WATCHDOG = 70


class Signals:
    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        grace_period_s: float,
        on_stop: Callable[[], None],
        on_quiet: Callable[[], None],
        on_resume: Callable[[], None],
    ) -> None:
        self._loop = loop
        self._grace_period_s = grace_period_s
        self._on_stop = on_stop
        self._on_quiet = on_quiet
        self._on_resume = on_resume
        self._installed: list[int] = []
        self._watchdog: threading.Timer | None = None

    def install(self) -> None:
        for sig in STOP_SIGNALS:
            self._handle(sig, self._first_stop, sig)
        self._handle(signal.SIGTSTP, self._on_quiet)
        self._handle(signal.SIGCONT, self._on_resume)

    def restore(self) -> None:
        for sig in self._installed:
            self._loop.remove_signal_handler(sig)
        self._installed.clear()
        if self._watchdog is not None:
            self._watchdog.cancel()

    def arm_watchdog(self) -> None:
        """Hard exit if the shutdown is still going after the grace period and the margin."""
        if self._watchdog is None:
            self._watchdog = threading.Timer(
                self._grace_period_s + WATCHDOG_MARGIN_S, _hard_exit, (EXIT_WATCHDOG,)
            )
            self._watchdog.daemon = True
            self._watchdog.start()

    def _handle(self, sig: int, callback: Callable[..., None], *args: object) -> None:
        self._loop.add_signal_handler(sig, callback, *args)
        self._installed.append(sig)

    def _first_stop(self, sig: int) -> None:
        log.warning(
            "%s: stopping (grace period %g s); send it again to exit at once",
            signal.Signals(sig).name,
            self._grace_period_s,
        )
        # From now on a stop signal means "now": the drain is already under way.
        for again in STOP_SIGNALS:
            self._loop.add_signal_handler(again, self._second_stop, again)
        self.arm_watchdog()
        self._on_stop()

    def _second_stop(self, sig: int) -> None:
        log.warning("%s again: exiting at once", signal.Signals(sig).name)
        _hard_exit(128 + sig)


def _hard_exit(status: int) -> None:
    """Leave now: jobs still held come back to other workers after their visibility timeout."""
    logging.shutdown()
    os._exit(status)
