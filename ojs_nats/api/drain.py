"""SIGTERM in a gateway: readiness fails and FETCH hands out nothing first, then uvicorn stops.

The first SIGTERM/SIGINT marks the process draining and reaches uvicorn's own handler only
`OJS_SHUTDOWN_DELAY_S` later, so a load balancer sees the failing probe before the listener
closes. A watchdog ends a shutdown that overruns delay + request drain + NATS drain.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import signal
import threading
from collections.abc import Callable
from types import FrameType
from typing import Any

from ojs_nats.service.context import Context

log = logging.getLogger(__name__)

#: Longest wait for the NATS connection to drain once requests are done.
NATS_DRAIN_TIMEOUT_S = 5.0
#: Slack on top of delay + request drain + NATS drain before the watchdog ends the process.
WATCHDOG_MARGIN_S = 5.0
#: Exit status when the watchdog had to end the process.
EXIT_WATCHDOG = 1

Handler = Callable[[int, FrameType | None], Any]


class Drain:
    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx
        self._begun = False

    def install(self) -> None:
        """Wrap the stop handlers the server installed (uvicorn's); call from its main thread."""
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            previous = signal.getsignal(sig)
            if callable(previous):
                signal.signal(sig, functools.partial(self._on_signal, loop, previous))

    def _on_signal(
        self,
        loop: asyncio.AbstractEventLoop,
        previous: Handler,
        sig: int,
        frame: FrameType | None,
    ) -> None:
        if self._begun:  # a second signal: straight to the server (uvicorn forces on SIGINT)
            previous(sig, frame)
            return
        self._begun = True
        settings = self._ctx.settings
        self._ctx.draining = True
        log.warning(
            "%s: draining (readiness fails, no jobs handed out); stopping in %g s",
            signal.Signals(sig).name,
            settings.shutdown_delay_s,
        )
        _arm_watchdog(
            settings.shutdown_delay_s
            + settings.drain_timeout_s
            + NATS_DRAIN_TIMEOUT_S
            + WATCHDOG_MARGIN_S
        )
        loop.call_soon_threadsafe(loop.call_later, settings.shutdown_delay_s, previous, sig, None)


def _arm_watchdog(seconds: float) -> None:
    timer = threading.Timer(seconds, _hard_exit)
    timer.daemon = True
    timer.start()


def _hard_exit() -> None:
    log.error("shutdown overran its time budget: exiting now")
    logging.shutdown()
    os._exit(EXIT_WATCHDOG)
