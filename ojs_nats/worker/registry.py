"""Handlers by job type. A handler takes one `JobContext`; it may be async or plain.

Plain (sync) handlers run in the worker's thread pool so they never block the event loop that
keeps heartbeats going; async handlers run on the loop. Registration happens before the worker
starts (the table is read-only while jobs run).
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable
from typing import Any, TypeVar, overload

HandlerFn = Callable[..., Any]
F = TypeVar("F", bound=HandlerFn)


@dataclasses.dataclass(frozen=True, slots=True)
class Handler:
    job_type: str
    fn: HandlerFn
    is_async: bool


class Registry:
    def __init__(self) -> None:
        self._handlers: dict[str, Handler] = {}
        self._frozen = False

    @overload
    def register(self, job_type: str) -> Callable[[F], F]: ...
    @overload
    def register(self, job_type: str, fn: F) -> F: ...
    def register(self, job_type: str, fn: F | None = None) -> Any:
        """`registry.register("email.send", fn)`, or as a decorator: `@registry.register(...)`."""
        if fn is None:

            def decorator(f: F) -> F:
                self._add(job_type, f)
                return f

            return decorator
        self._add(job_type, fn)
        return fn

    def _add(self, job_type: str, fn: HandlerFn) -> None:
        if self._frozen:
            raise RuntimeError("handlers cannot be registered while the worker runs")
        if not job_type or not isinstance(job_type, str):
            raise ValueError("a job type is a non-empty string")
        if not callable(fn):
            raise TypeError(f"the handler for {job_type!r} is not callable")
        if job_type in self._handlers:
            raise ValueError(f"a handler for {job_type!r} is already registered")
        self._handlers[job_type] = Handler(job_type, fn, _is_async(fn))

    def get(self, job_type: str) -> Handler | None:
        return self._handlers.get(job_type)

    def types(self) -> list[str]:
        return sorted(self._handlers)

    def freeze(self) -> None:
        self._frozen = True


def _is_async(fn: HandlerFn) -> bool:
    if inspect.iscoroutinefunction(fn):
        return True
    # An instance whose class defines `async def __call__`.
    return not inspect.isroutine(fn) and inspect.iscoroutinefunction(type(fn).__call__)
