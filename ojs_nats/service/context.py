"""What every use case needs: storage, settings and the clock, passed down explicitly."""

from __future__ import annotations

import dataclasses
import socket
from collections.abc import Callable

from ojs_nats.config import Settings
from ojs_nats.model import ids
from ojs_nats.storage import Storage


@dataclasses.dataclass(slots=True)
class Context:
    storage: Storage
    settings: Settings
    clock: Callable[[], int] = ids.now_ms
    #: `source` of the events this process emits (ojs-events.md §2.4).
    source: str = ""
    #: Set when the process is shutting down: fetch hands out nothing more.
    draining: bool = False
    #: Concurrency slots whose holder was last seen active, and when (a per-process cache that
    #: spares re-reading the holder on every fetch; see service/limits.py).
    verified: dict[str, int] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.source:
            self.source = f"ojs://{self.settings.service_name}/api/{socket.gethostname()}"
