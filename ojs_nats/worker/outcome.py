"""What a handler's return or exception means for the job: ACK with a result, or NACK.

Handlers signal intent by raising `Retry` (fail now, retry per the job's policy) or `Discard`
(fail for good); any other exception is a retryable failure. `failure_body` builds the NACK
`error` object of the HTTP binding (§10.3): code, type, message, retryable, details.
"""

from __future__ import annotations

import dataclasses
import traceback
from typing import Any

import orjson

#: Frames of a handler's traceback kept in the error (the store keeps errors per attempt).
BACKTRACE_FRAMES = 20


class HandlerError(Exception):
    """A failure the handler reports on purpose, with its own code and retry decision."""

    code = "handler_error"
    retryable = True

    def __init__(
        self,
        message: str = "",
        *,
        code: str | None = None,
        retryable: bool | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message or self.__class__.__name__)
        self.message = message or self.__class__.__name__
        if code is not None:
            self.code = code
        if retryable is not None:
            self.retryable = retryable
        self.details = details or {}


class Retry(HandlerError):
    """Fail this attempt; the job's retry policy decides when it runs again."""

    code = "retry"
    retryable = True


class Discard(HandlerError):
    """Fail for good: no further attempts (the job is discarded or dead-lettered)."""

    code = "discard"
    retryable = False


class JobTimeout(HandlerError):
    """The handler ran past the job's timeout and was stopped."""

    code = "timeout"
    retryable = True


@dataclasses.dataclass(frozen=True, slots=True)
class Success:
    result: Any


@dataclasses.dataclass(frozen=True, slots=True)
class Failure:
    error: dict[str, Any]


Outcome = Success | Failure


def success(result: Any) -> Outcome:
    """ACK with `result`, if it is JSON; a result that is not becomes a permanent failure."""
    try:
        orjson.dumps(result)
    except TypeError as exc:
        return Failure(
            {
                "code": "invalid_result",
                "type": "TypeError",
                "message": f"The handler's result is not JSON-serializable: {exc}",
                "retryable": False,
            }
        )
    return Success(result)


def failure(exc: BaseException) -> Outcome:
    return Failure(failure_body(exc))


def failure_body(exc: BaseException) -> dict[str, Any]:
    """The NACK `error` object for an exception raised by a handler or its middleware."""
    error_class = f"{type(exc).__module__}.{type(exc).__qualname__}"
    if isinstance(exc, HandlerError):
        body: dict[str, Any] = {
            "code": exc.code,
            "type": type(exc).__name__,
            "message": exc.message,
            "retryable": exc.retryable,
            "details": {"error_class": error_class, **exc.details},
        }
    else:
        body = {
            "code": "handler_error",
            "type": type(exc).__name__,
            "message": str(exc) or type(exc).__name__,
            "retryable": True,
            "details": {"error_class": error_class},
        }
    frames = traceback.format_exception(exc, limit=BACKTRACE_FRAMES)
    body["backtrace"] = [line.rstrip() for line in frames][-BACKTRACE_FRAMES:]
    return body


def shutdown_body(grace_period_s: float, started: bool, quiet: bool = False) -> dict[str, Any]:
    """The error sent with a job handed back by a worker that is shutting down (or `quiet`:
    told to take no new jobs)."""
    if started:
        message = (
            f"The worker shut down; the job was still running after the {grace_period_s:g} s "
            "grace period and was handed back."
        )
    elif quiet:
        message = "The worker was told to take no new jobs before the job started; handed back."
    else:
        message = "The worker began shutting down before the job started; it was handed back."
    return {"code": "shutdown", "type": "ShutdownError", "message": message, "retryable": True}
