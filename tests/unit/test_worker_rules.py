"""Pure rules of the worker runtime: lifecycle moves, settings, heartbeat pace, registry."""

import functools

import pytest

from ojs_nats.worker.heartbeat import interval_s
from ojs_nats.worker.lifecycle import WorkerState, after_directive, can_move
from ojs_nats.worker.registry import Registry
from ojs_nats.worker.settings import WorkerSettings, WorkerSettingsError

R, Q, T = WorkerState.RUNNING, WorkerState.QUIET, WorkerState.TERMINATE


@pytest.mark.parametrize(("current", "directive", "expected"), [
    (R, "quiet", Q),
    (R, "terminate", T),
    (R, "running", R),
    (Q, "terminate", T),
    (Q, "running", Q),  # only SIGCONT resumes a quiet worker
    (T, "quiet", T),  # terminate is never left
    (T, "running", T),
    (R, "reboot", R),  # unknown directives change nothing
    (R, None, R),
])
def test_heartbeat_directive_moves_only_along_legal_edges(current, directive, expected):
    assert after_directive(current, directive) is expected


@pytest.mark.parametrize(("current", "wanted", "legal"), [
    (R, Q, True), (R, T, True), (Q, R, True), (Q, T, True),
    (T, R, False), (T, Q, False), (R, R, False),
])
def test_lifecycle_edges(current, wanted, legal):
    assert can_move(current, wanted) is legal


def test_settings_come_from_the_environment():
    settings = WorkerSettings.from_env({
        "OJS_URL": "http://a:1, http://b:2", "OJS_QUEUES": "critical,default",
        "OJS_CONCURRENCY": "4", "OJS_SHUTDOWN_GRACE_PERIOD_S": "30s",
        "OJS_HEARTBEAT_INTERVAL_S": "2.5", "OJS_VISIBILITY_TIMEOUT_MS": "60000",
        "OJS_WORKER_LABELS": "canary"})
    assert settings.urls == ("http://a:1", "http://b:2")
    assert settings.queues == ("critical", "default")
    assert (settings.concurrency, settings.grace_period_s) == (4, 30.0)
    assert settings.heartbeat_interval_s == 2.5
    assert settings.visibility_timeout_ms == 60_000
    assert settings.labels == ("canary",)


def test_defaults_are_the_worker_protocols():
    settings = WorkerSettings.from_env({})
    assert settings.queues == ("default",)
    assert (settings.concurrency, settings.heartbeat_interval_s) == (10, 5.0)
    assert settings.grace_period_s == 25.0
    assert settings.visibility_timeout_ms is None


def test_explicit_settings_win_over_the_environment():
    settings = WorkerSettings.from_env({"OJS_CONCURRENCY": "4"}, concurrency=7, queues="a,b")
    assert settings.concurrency == 7
    assert settings.queues == ("a", "b")
    assert settings.replace(concurrency=None).concurrency == 7


@pytest.mark.parametrize(("variable", "value"), [
    ("OJS_CONCURRENCY", "0"), ("OJS_CONCURRENCY", "many"), ("OJS_SHUTDOWN_GRACE_PERIOD_S", "-1"),
    ("OJS_VISIBILITY_TIMEOUT_MS", "0"), ("OJS_QUEUES", " , "),
])
def test_bad_settings_are_refused(variable, value):
    with pytest.raises(WorkerSettingsError):
        WorkerSettings.from_env({variable: value})


@pytest.mark.parametrize(("leases", "expected"), [
    ([], 5.0),
    ([None, None], 5.0),  # unknown leases: the server's default (30 min) is long
    ([3000], 1.0),  # three beats per lease
    ([60_000, 3000], 1.0),  # the shortest lease sets the pace
    ([300], 0.2),  # but never faster than the floor
])
def test_heartbeat_pace_follows_the_shortest_lease(leases, expected):
    assert interval_s(5.0, leases) == pytest.approx(expected)


class AsyncCallable:
    async def __call__(self, ctx):
        return 1


async def async_handler(ctx):
    return 1


def sync_handler(ctx):
    return 1


@pytest.mark.parametrize(("handler", "is_async"), [
    (async_handler, True),
    (sync_handler, False),
    (AsyncCallable(), True),
    (functools.partial(async_handler), True),
    (lambda ctx: None, False),
])
def test_registry_tells_async_handlers_from_sync_ones(handler, is_async):
    registry = Registry()
    registry.register("a.b", handler)
    assert registry.get("a.b").is_async is is_async


def test_registry_decorator_returns_the_function_and_refuses_duplicates_and_late_changes():
    registry = Registry()

    @registry.register("a.b")
    def handler(ctx):
        return 1

    assert handler(None) == 1
    assert registry.types() == ["a.b"]
    with pytest.raises(ValueError, match="already registered"):
        registry.register("a.b", sync_handler)
    registry.freeze()
    with pytest.raises(RuntimeError):
        registry.register("c.d", sync_handler)
    assert registry.get("c.d") is None
