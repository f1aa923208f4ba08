"""What a handler's return value or exception becomes: an ACK result or a NACK error."""

import pytest

from ojs_nats.worker import outcome
from ojs_nats.worker.outcome import Discard, Failure, HandlerError, Retry, Success


def test_a_returned_value_is_the_result():
    assert outcome.success({"sent": True}) == Success({"sent": True})
    assert outcome.success(None) == Success(None)


def test_a_result_that_is_not_json_is_a_permanent_failure():
    result = outcome.success({"when": object()})
    assert isinstance(result, Failure)
    assert result.error["code"] == "invalid_result"
    assert result.error["retryable"] is False


@pytest.mark.parametrize(("exc", "code", "retryable"), [
    (Retry("try later"), "retry", True),
    (Discard("bad input"), "discard", False),
    (HandlerError("quota", code="quota_exceeded", retryable=False), "quota_exceeded", False),
    (ValueError("boom"), "handler_error", True),
])
def test_exceptions_become_nack_errors(exc, code, retryable):
    try:
        raise exc
    except Exception as caught:
        error = outcome.failure_body(caught)
    assert (error["code"], error["retryable"]) == (code, retryable)
    assert error["type"] == type(exc).__name__
    assert error["message"] == str(exc)
    assert error["details"]["error_class"].endswith(type(exc).__qualname__)
    assert any("raise exc" in line for line in error["backtrace"])


def test_handler_error_details_are_kept():
    error = outcome.failure_body(Retry("later", details={"retry_in": 5}))
    assert error["details"]["retry_in"] == 5


def test_a_handed_back_job_says_why():
    started = outcome.shutdown_body(2, started=True)
    assert started["code"] == "shutdown"
    assert started["retryable"] is True
    assert "2 s grace period" in started["message"]
    assert "before the job started" in outcome.shutdown_body(2, started=False)["message"]


def test_a_job_handed_back_by_a_quiet_worker_says_so():
    body = outcome.shutdown_body(2, started=False, quiet=True)
    assert "take no new jobs" in body["message"]
    assert body["retryable"] is True
