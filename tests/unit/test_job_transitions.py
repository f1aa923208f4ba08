"""Job record transitions as pure functions: legality, fields, and the writes they ask for."""

import pytest

from ojs_nats.errors import ConflictError
from ojs_nats.model import ids
from ojs_nats.model import job as jobs
from ojs_nats.model.envelope import parse_submission
from ojs_nats.model.lifecycle import LEGAL, TERMINAL, State

T0 = 1_770_892_200_000


def new(options=None, **fields):
    body = {"type": "a.b", "args": [1], "options": options or {}, **fields}
    return jobs.new_record(parse_submission(body, T0), T0).record


def claimed(options=None, visibility=30_000, timeout=None, worker="w1"):
    return jobs.claim(new(options), T0 + 10, worker, visibility, timeout).record


def test_new_job_is_available_and_asks_for_a_ready_entry():
    change = jobs.new_record(parse_submission({"type": "a.b", "args": []}, T0), T0)
    assert change.after is State.AVAILABLE
    assert change.ready is True
    assert change.wake_at is None
    assert [e.type for e in change.events] == ["job.enqueued"]


def test_scheduled_job_asks_for_a_timer_and_no_ready_entry():
    change = jobs.new_record(
        parse_submission({"type": "a.b", "args": [], "options": {"scheduled_at": "+PT5S"}}, T0),
        T0)
    assert change.after is State.SCHEDULED
    assert change.ready is False
    assert change.wake_at == T0 + 5000


def test_claim_sets_attempt_lease_and_moves_the_step():
    record = new()
    change = jobs.claim(record, T0 + 10, "w1", 30_000, 2_000)
    job, sys = change.record["job"], change.record["sys"]
    assert job["state"] == "active"
    assert job["attempt"] == 1
    assert job["started_at"].endswith("Z")
    assert sys["lease"]["deadline"] == T0 + 10 + 30_000
    assert sys["lease"]["exec_deadline"] == T0 + 10 + 2_000
    assert change.wake_at == T0 + 10 + 2_000
    assert sys["step"] == record["sys"]["step"] + 1


def test_complete_clears_error_and_keeps_result():
    record = claimed()
    record["job"]["error"] = {"code": "x"}
    change = jobs.complete(record, T0 + 50, {"ok": True}, "w1")
    assert change.after is State.COMPLETED
    assert change.record["job"]["result"] == {"ok": True}
    assert "error" not in change.record["job"]
    assert change.events[0].data["duration_ms"] == 40


def test_ack_from_another_worker_is_refused():
    with pytest.raises(ConflictError):
        jobs.complete(claimed(worker="w1"), T0 + 50, None, "w2")


def test_failure_with_attempts_left_is_retryable_with_backoff():
    record = claimed({"retry": {"initial_interval": "PT1S", "jitter": False}})
    change = jobs.fail(record, T0 + 100, {"code": "handler_error", "message": "boom"}, None)
    job = change.record["job"]
    assert change.after is State.RETRYABLE
    assert job["retry_delay_ms"] == 1000
    assert change.wake_at == T0 + 1100
    assert job["errors"][0]["attempt"] == 1
    assert [e.type for e in change.events] == ["job.failed", "job.retrying"]


@pytest.mark.parametrize("error", [
    {"code": "handler_error", "message": "x", "retryable": False},
    {"code": "DISCARD", "message": "x"},
    {"code": "handler_error", "message": "x", "details": {"error_class": "FatalError"}},
])
def test_permanent_failures_discard_at_once(error):
    record = claimed({"retry": {"max_attempts": 5, "non_retryable_errors": ["FatalError"]}})
    change = jobs.fail(record, T0 + 100, error, None)
    assert change.after is State.DISCARDED
    assert change.record["job"]["completed_at"] == change.record["job"]["discarded_at"]
    assert change.dead_letter is None


def test_exhausted_job_goes_to_the_dead_letter_queue_when_asked():
    record = claimed({"retry": {"max_attempts": 1, "on_exhaustion": "dead_letter"}})
    change = jobs.fail(record, T0 + 100, {"code": "e", "message": "m"}, None)
    assert change.after is State.DISCARDED
    assert change.dead_letter is True
    back = jobs.retry_dead(change.record, T0 + 200)
    assert back.after is State.AVAILABLE
    assert back.record["job"]["attempt"] == 0
    assert back.dead_letter is False


def test_dead_letter_retry_sets_a_new_enqueued_at_and_keeps_the_error_history():
    # ojs-dead-letter.md §6.1: attempt reset, error history preserved, new enqueued_at.
    record = claimed({"retry": {"max_attempts": 1, "on_exhaustion": "dead_letter"}})
    dead = jobs.fail(record, T0 + 100, {"code": "e", "message": "m"}, None).record
    back = jobs.retry_dead(dead, T0 + 5000).record["job"]
    assert back["enqueued_at"] == ids.format_ts(T0 + 5000)
    assert back["enqueued_at"] != record["job"]["enqueued_at"]
    assert len(back["errors"]) == 1
    assert back["id"] == record["job"]["id"]


def test_nack_with_requeue_makes_the_job_available_without_a_failure():
    change = jobs.fail(claimed(), T0 + 100, {"code": "cancelled", "retryable": False}, None,
                       requeue=True)
    assert change.after is State.AVAILABLE
    assert change.ready is True
    assert "errors" not in change.record["job"]


def test_heartbeat_extends_the_lease_without_a_new_step():
    record = claimed(visibility=3000)
    change = jobs.extend(record, T0 + 2000, "w1", None, 1_800_000)
    assert change.record["sys"]["lease"]["deadline"] == T0 + 5000
    assert change.step == record["sys"]["step"]
    assert change.wake_at is None  # the pending timer re-arms itself when it fires


def test_started_and_heartbeat_events_name_a_worker_even_when_the_fetch_named_none():
    # ojs-events.md §4.1: `worker_id` is a required field of job.started and job.heartbeat.
    change = jobs.claim(new(), T0 + 10, None, 30_000, None)
    assert change.events[0].data["worker_id"] == jobs.ANONYMOUS_WORKER
    assert "worker_id" not in change.record["job"]
    assert change.record["sys"]["lease"]["worker"] is None  # any worker may still ack it
    beat = jobs.extend(change.record, T0 + 20, None, None, 1_800_000)
    assert beat.events[0].data["worker_id"] == jobs.ANONYMOUS_WORKER
    named = jobs.extend(claimed(worker="w9"), T0 + 20, None, None, 1_800_000)
    assert named.events[0].data["worker_id"] == "w9"


def test_wake_requeues_an_expired_lease_then_times_out_an_overrun():
    record = claimed(visibility=3000)
    assert jobs.on_wake(record, T0 + 2000) is None
    requeued = jobs.on_wake(record, T0 + 3010)
    assert requeued is not None
    assert requeued.after is State.AVAILABLE
    timed = jobs.on_wake(claimed(visibility=30_000, timeout=2000), T0 + 2010)
    assert timed is not None
    assert timed.after is State.RETRYABLE
    assert timed.record["job"]["error"]["code"] == "timeout"


@pytest.mark.parametrize(("error", "options", "retryable"), [
    ({"code": "e", "message": "m"}, {}, True),
    ({"code": "e", "message": "m", "retryable": False}, {}, False),
    ({"code": "e", "message": "m", "type": "auth.expired"},
     {"retry": {"non_retryable_errors": ["auth.*"]}}, False),
    ({"code": "e", "message": "m"}, {"retry": {"max_attempts": 1}}, True),
])
def test_job_failed_event_always_says_whether_the_error_is_retryable(error, options, retryable):
    # ojs-events.md §4 job.failed: `error.retryable` is required.
    change = jobs.fail(claimed(options), T0 + 100, error, None)
    failed = next(e for e in change.events if e.type == "job.failed")
    assert failed.data["error"]["retryable"] is retryable
    assert failed.data["error"]["code"] == "e"
    assert failed.data["error"]["message"] == "m"


def test_execution_timeout_records_its_kind_and_emits_job_timeout():
    # ojs-timeouts.md §8 (error fields) and §11.1 (`job.timeout` event).
    timed = jobs.on_wake(claimed(visibility=30_000, timeout=2000), T0 + 2510)
    assert timed is not None
    error = timed.record["job"]["error"]
    assert error["type"] == "timeout"
    assert error["timeout_kind"] == "execution"
    assert error["limit_seconds"] == 2.0
    assert error["elapsed_seconds"] == 2.5
    assert timed.record["job"]["errors"][-1]["timeout_kind"] == "execution"
    assert [e.type for e in timed.events] == ["job.timeout", "job.failed", "job.retrying"]
    assert timed.events[0].data["timeout_kind"] == "execution"
    assert timed.events[0].data["attempt"] == 1


def test_a_silent_job_stalls_at_its_heartbeat_timeout_and_a_beat_resets_the_clock():
    # ojs-timeouts.md §5.5, §7.3, §8: error type `stalled`, `job.stalled`, then the retry policy.
    record = jobs.claim(new(), T0 + 10, "w1", 600_000, None, heartbeat_ms=60_000).record
    assert jobs.next_wake(record) == T0 + 10 + 60_000
    assert jobs.on_wake(record, T0 + 60_000) is None
    beaten = jobs.extend(record, T0 + 50_000, "w1", None, 1_800_000).record
    assert jobs.next_wake(beaten) == T0 + 110_000
    assert jobs.on_wake(beaten, T0 + 100_000) is None
    stalled = jobs.on_wake(beaten, T0 + 110_500)
    assert stalled is not None
    assert stalled.after is State.RETRYABLE
    error = stalled.record["job"]["error"]
    assert (error["type"], error["timeout_kind"]) == ("stalled", "stalled")
    assert (error["limit_seconds"], error["elapsed_seconds"]) == (60.0, 60.5)
    assert [e.type for e in stalled.events] == ["job.stalled", "job.failed", "job.retrying"]
    assert stalled.events[0].data["worker_id"] == "w1"


def test_the_earlier_of_stall_and_lease_expiry_decides():
    record = jobs.claim(new(), T0, "w1", 1_000, None, heartbeat_ms=5_000).record
    change = jobs.on_wake(record, T0 + 6_000)
    assert change is not None
    assert change.after is State.AVAILABLE  # the lease ran out first: visibility timeout
    assert change.record["job"]["errors"][-1]["type"] == "visibility_timeout"
    last = jobs.claim(new({"retry": {"max_attempts": 1}}), T0, "w1", 60_000, None,
                      heartbeat_ms=1_000).record
    discarded = jobs.on_wake(last, T0 + 1_000)
    assert discarded is not None
    assert discarded.after is State.DISCARDED
    assert [e.type for e in discarded.events] == ["job.stalled", "job.failed", "job.discarded"]


def test_a_dead_workers_job_is_available_at_once_only_if_still_its_own():
    # ojs-worker-protocol.md §10.2: worker_death in the history, available now, no backoff.
    record = claimed(worker="w1")  # claimed at T0 + 10
    change = jobs.worker_lost(record, T0 + 40_000, "w1", T0 + 5_000, 30_000)
    assert change is not None
    assert change.after is State.AVAILABLE
    assert change.ready
    assert change.record["job"]["errors"][-1]["type"] == "worker_death"
    assert [e.type for e in change.events] == ["job.stalled", "job.requeued"]
    assert change.events[0].data["reason"] == "worker_death"
    assert jobs.worker_lost(record, T0 + 40_000, "w2", T0 + 5_000, 30_000) is None
    # Claimed after the heartbeat whose list is used: not known to be the dead worker's job.
    assert jobs.worker_lost(record, T0 + 40_000, "w1", T0, 30_000) is None
    last = claimed({"retry": {"max_attempts": 1}})
    discarded = jobs.worker_lost(last, T0 + 40_000, "w1", T0 + 5_000, 30_000)
    assert discarded is not None
    assert discarded.after is State.DISCARDED


def test_visibility_expiry_on_the_last_attempt_follows_the_retry_policy():
    record = claimed({"retry": {"max_attempts": 1}}, visibility=1000)
    change = jobs.on_wake(record, T0 + 1100)
    assert change is not None
    assert change.after is State.DISCARDED


def test_wake_expires_a_waiting_job_without_completed_at():
    record = new({"expires_at": "+PT2S"})
    assert jobs.next_wake(record) == T0 + 2000
    change = jobs.on_wake(record, T0 + 2000)
    assert change is not None
    assert change.after is State.DISCARDED
    assert "completed_at" not in change.record["job"]
    assert change.events[0].type == "job.expired"


@pytest.mark.parametrize("state", sorted(TERMINAL))
def test_terminal_states_refuse_everything_but_the_dead_letter_retry(state):
    record = new()
    record["job"]["state"] = state.value
    for action in (lambda r: jobs.cancel(r, T0), lambda r: jobs.complete(r, T0, None, None),
                   lambda r: jobs.fail(r, T0, {"code": "x"}, None),
                   lambda r: jobs.claim(r, T0, None, 1000, None)):
        with pytest.raises(ConflictError):
            action(record)


def test_cancel_of_an_active_job_is_immediate():
    change = jobs.cancel(claimed(), T0 + 5)
    assert change.after is State.CANCELLED
    assert change.record["job"]["attempt"] == 1
    assert "completed_at" not in change.record["job"]


def test_every_state_has_an_entry_in_the_transition_table():
    assert set(LEGAL) == set(State)


@pytest.mark.parametrize(("message", "expected"), [
    ("Database connection timed out", "ConnectionTimeout"),
    ("API rate limit reached", "RateLimitExceeded"),
    ("Unexpected null reference", "InternalServerError"),
    ("request timeout after 10s", "Timeout"),
])
def test_error_type_from_the_message_when_none_is_given(message, expected):
    assert jobs.error_type({"code": "handler_error", "message": message}) == expected


def test_explicit_error_type_wins():
    assert jobs.error_type({"type": "smtp.refused", "message": "rate limit"}) == "smtp.refused"
    assert jobs.error_type({"details": {"error_class": "Fatal"}}) == "Fatal"


def test_a_stall_deadline_the_server_overlooked_gives_a_fresh_window_instead():
    # Timers handled long after the deadline (an outage): heartbeats may have been lost on the
    # server's side, so the job, perhaps still running, is not failed (and run twice).
    record = jobs.claim(new(), T0, "w1", 1_800_000, None, grouped=True, heartbeat_ms=60_000).record
    late = T0 + 60_000 + jobs.OVERLOOKED_MS + 1
    change = jobs.on_wake(record, late)
    assert change is not None
    assert (change.before, change.after, change.events) == (State.ACTIVE, State.ACTIVE, [])
    assert change.wake_at == late + 60_000  # its own timer now, at the new stall deadline
    assert jobs.own_timer(change.record) == late + 60_000
    stalled = jobs.on_wake(change.record, late + 60_000)
    assert stalled is not None
    assert stalled.after is State.RETRYABLE
    just_late = jobs.on_wake(record, T0 + 60_000 + jobs.OVERLOOKED_MS - 1)
    assert just_late is not None
    assert just_late.after is State.RETRYABLE


def test_a_heartbeat_does_not_extend_a_job_another_worker_holds():
    record = claimed(worker="w2")
    with pytest.raises(ConflictError):
        jobs.extend(record, T0 + 1_000, "w1", None, 1_800_000)
    assert jobs.extend(record, T0 + 1_000, "w2", None, 1_800_000).after is State.ACTIVE
