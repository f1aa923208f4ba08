"""The execution middleware chain: order, management operations, errors, and the built-ins."""

import asyncio
import logging

import pytest

from ojs_nats.worker import Chain, JobContext, JobTimeout, enforce_timeout, log_execution


async def context(**job) -> JobContext:
    job = {"id": "01a20978-26d0-71ed-b72e-45ec39adfb63", "type": "a.b", "queue": "q",
           "args": ["secret"], "attempt": 1, **job}
    return JobContext(job, "w1", asyncio.get_running_loop(), lambda: None, lambda *a: None)


def recording(name, calls):
    async def middleware(ctx, call_next):
        calls.append(f"{name}:before")
        result = await call_next()
        calls.append(f"{name}:after")
        return result
    middleware.name = name
    return middleware


async def test_first_added_is_outermost_and_sees_the_result_last():
    calls = []
    chain = Chain([recording("a", calls), recording("b", calls)])

    async def handler():
        calls.append("handler")
        return 42

    assert await chain.run(await context(), handler) == 42
    assert calls == ["a:before", "b:before", "handler", "b:after", "a:after"]


async def test_management_operations_place_middleware_by_object_or_name():
    calls = []
    a, b, c, d, e = (recording(n, calls) for n in "abcde")
    chain = Chain([a])
    chain.add(c)
    chain.insert_before("c", b)
    chain.insert_after(c, d)
    chain.prepend(e)
    assert chain.names() == ["e", "a", "b", "c", "d"]
    chain.remove("a")
    chain.remove(e)
    assert chain.names() == ["b", "c", "d"]
    with pytest.raises(ValueError, match="not in the chain"):
        chain.remove("a")
    chain.freeze()
    with pytest.raises(RuntimeError):
        chain.add(a)


async def test_a_middleware_that_does_not_call_next_short_circuits():
    async def cached(ctx, call_next):
        return "cached"

    async def handler():
        raise AssertionError("the handler must not run")

    assert await Chain([cached]).run(await context(), handler) == "cached"


async def test_calling_next_twice_is_refused():
    async def greedy(ctx, call_next):
        await call_next()
        return await call_next()

    async def handler():
        return 1

    with pytest.raises(RuntimeError, match="twice"):
        await Chain([greedy]).run(await context(), handler)


async def test_errors_propagate_outward_and_may_be_transformed():
    seen = []

    async def reporter(ctx, call_next):
        try:
            return await call_next()
        except KeyError as exc:
            seen.append(exc)
            raise ValueError("translated") from exc

    async def handler():
        raise KeyError("missing")

    with pytest.raises(ValueError, match="translated"):
        await Chain([reporter]).run(await context(), handler)
    assert len(seen) == 1


async def test_an_empty_chain_runs_the_handler():
    async def handler():
        return "plain"

    assert await Chain().run(await context(), handler) == "plain"


async def test_timeout_stops_a_handler_that_runs_too_long():
    ctx = await context(timeout_ms=100)
    started = asyncio.get_running_loop().time()

    async def handler():
        await asyncio.sleep(10)

    with pytest.raises(JobTimeout) as caught:
        await enforce_timeout(ctx, handler)
    assert asyncio.get_running_loop().time() - started < 2
    assert ctx.cancelled.is_set()
    assert caught.value.code == "timeout"


async def test_timeout_leaves_the_handlers_own_timeout_error_alone():
    async def handler():
        raise TimeoutError("upstream API timed out")

    with pytest.raises(TimeoutError, match="upstream"):
        await enforce_timeout(await context(timeout_ms=5000), handler)


async def test_no_timeout_means_no_limit():
    async def handler():
        await asyncio.sleep(0.05)
        return "done"

    assert await enforce_timeout(await context(), handler) == "done"


async def test_logging_middleware_logs_outcomes_but_never_arguments(caplog):
    async def handler():
        return 1

    async def failing():
        raise RuntimeError("broken")

    with caplog.at_level(logging.DEBUG, logger="ojs_nats.worker.job"):
        await log_execution(await context(), handler)
        with pytest.raises(RuntimeError):
            await log_execution(await context(), failing)
    text = caplog.text
    assert "completed" in text
    assert "failed" in text
    assert "broken" in text
    assert "secret" not in text
