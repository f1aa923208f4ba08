"""A Python worker runtime for any OJS gateway, over HTTP (the package imports no server code).

    from ojs_nats.worker import JobContext, Retry, Worker

    worker = Worker(queues=["email"])

    @worker.register("email.send")
    async def send(ctx: JobContext) -> dict:
        ...

Run it with `ojs-nats worker mymodule:worker`; see README ("Workers") for settings and signals.
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
