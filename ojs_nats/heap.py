"""Garbage-collector settings for the gateway and worker processes the CLI starts.

CPython's cyclic collector now and then walks every tracked object of its oldest generation.
Most of those objects are the libraries, the app and the connections made at start-up, which
live as long as the process. Under load (S5: 100,000 delayed jobs firing beside unrelated
traffic) a full collection of them paused the event loop for ~100 ms, dozens of times a
minute, which showed up directly as timer lateness and request p99. Freezing the start-up heap
takes those objects out of the collector's walks; a larger young-generation threshold makes
the young collections, and so the older ones they trigger, rarer.
"""

from __future__ import annotations

import gc

#: Net allocations between two young-generation collections (CPython's default: 700).
YOUNG_THRESHOLD = 10_000


def settle_after_start() -> None:
    """Call once start-up is done: what exists now is kept out of later collections."""
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, middle, old)
