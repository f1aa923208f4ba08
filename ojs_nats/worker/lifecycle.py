"""The worker's own lifecycle: running -> quiet -> terminate (ojs-worker-protocol.md §2).

Pure rules, no I/O: which state a trigger (signal or heartbeat directive) leads to. The runtime
keeps the current state and reports it on every heartbeat; `terminate` is never left.
"""

from __future__ import annotations

import enum


class WorkerState(enum.StrEnum):
    RUNNING = "running"
    QUIET = "quiet"
    TERMINATE = "terminate"


#: Legal moves (§2.3): quiet -> running only on SIGCONT, nothing out of terminate.
_ALLOWED: dict[WorkerState, frozenset[WorkerState]] = {
    WorkerState.RUNNING: frozenset({WorkerState.QUIET, WorkerState.TERMINATE}),
    WorkerState.QUIET: frozenset({WorkerState.RUNNING, WorkerState.TERMINATE}),
    WorkerState.TERMINATE: frozenset(),
}


def can_move(current: WorkerState, wanted: WorkerState) -> bool:
    return wanted in _ALLOWED[current]


def after_directive(current: WorkerState, directive: object) -> WorkerState:
    """The state a heartbeat response asks for, where the protocol allows it.

    A `running` answer never resumes a quiet worker: a worker quieted by SIGTSTP would be
    resumed by every server that has no directive for it (only SIGCONT resumes, §2.3).
    """
    try:
        wanted = WorkerState(str(directive))
    except ValueError:
        return current
    if wanted is WorkerState.RUNNING or not can_move(current, wanted):
        return current
    return wanted
