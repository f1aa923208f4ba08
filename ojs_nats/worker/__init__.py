"""A Python worker runtime for any OJS gateway, over HTTP; it imports no server code.

Register handlers on a `Worker` (`@worker.register("email.send")`), then run it with
`ojs-nats worker mymodule:worker`. The README ("Workers") has an example and every setting.
"""

from ojs_nats.worker.context import JobContext
from ojs_nats.worker.lifecycle import WorkerState
from ojs_nats.worker.middleware import CallNext, Chain, Middleware, enforce_timeout, log_execution
from ojs_nats.worker.outcome import Discard, HandlerError, JobTimeout, Retry
from ojs_nats.worker.runtime import Worker
from ojs_nats.worker.settings import WorkerSettings, WorkerSettingsError

__all__ = [
    "CallNext",
    "Chain",
    "Discard",
    "HandlerError",
    "JobContext",
    "JobTimeout",
    "Middleware",
    "Retry",
    "Worker",
    "WorkerSettings",
    "WorkerSettingsError",
    "WorkerState",
    "enforce_timeout",
    "log_execution",
]
