"""`ojs-nats worker MODULE:OBJECT`: finding the worker, and refusing what is not one."""

import pytest

from ojs_nats.cli import build_parser, load_worker
from ojs_nats.worker import Worker
from ojs_nats.worker.example import worker as example

made = Worker()


def make_worker() -> Worker:
    return made


def make_something_else() -> int:
    return 42


def test_the_example_worker_is_found_with_its_standard_handlers():
    assert load_worker("ojs_nats.worker.example:worker") is example
    assert example.registry.types() == sorted(
        f"test.{name}" for name in ("echo", "fail_once", "fail_twice", "fail_always", "slow",
                                    "timeout", "panic", "produce", "noop"))


def test_a_factory_is_called():
    assert load_worker(f"{__name__}:make_worker") is made


@pytest.mark.parametrize("target", [
    "ojs_nats.worker.example", "ojs_nats.worker.example:", f"{__name__}:make_something_else",
])
def test_what_is_not_a_worker_is_refused(target):
    with pytest.raises(ValueError, match=r"MODULE:OBJECT|not an ojs_nats\.worker\.Worker"):
        load_worker(target)


def test_flags_parse_into_settings_overrides():
    args = build_parser().parse_args([
        "worker", "app:worker", "--url", "http://a:1,http://b:2", "--queues", "x,y",
        "--concurrency", "3", "--grace-period", "7.5"])
    assert (args.target, args.url, args.queues) == ("app:worker", "http://a:1,http://b:2", "x,y")
    assert (args.concurrency, args.grace_period, args.heartbeat_interval) == (3, 7.5, None)
