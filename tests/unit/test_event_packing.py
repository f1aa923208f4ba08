"""Several events stored in one message (storage/events.py `pack`): a job's events keep their
order (ojs-events.md §9.2), and a message stays within its bounds."""

from types import SimpleNamespace

import orjson

from ojs_nats.service.apply import event_at
from ojs_nats.storage.events import (
    MAX_EVENTS_PER_MESSAGE,
    MAX_MESSAGE_BYTES,
    _count,
    pack,
    unpack,
)


def item(subject, job, n=0, size=0):
    event = {"id": f"evt_{job}_{n}", "subject": job, "pad": "x" * size}
    return subject, job, orjson.dumps(event)


def stored(items):
    """The stored messages as (subject, [(job, n)]) in storage order."""
    return [
        (subject, [tuple(e["id"].split("_")[1:]) for e in unpack(data)])
        for subject, data in pack(items)
    ]


def test_events_of_one_subject_share_a_message_and_a_lone_one_stays_an_object():
    packed = pack([item("s.started", "a"), item("s.completed", "a"), item("s.started", "b")])
    assert [subject for subject, _ in packed] == ["s.started", "s.completed"]
    assert packed[0][1].startswith(b"[")
    assert len(unpack(packed[0][1])) == 2
    assert packed[1][1].startswith(b"{")  # one event: stored exactly as before packing existed
    assert unpack(packed[1][1]) == [orjson.loads(item("s.completed", "a")[2])]


def test_a_jobs_events_never_come_out_of_order():
    # Joining a2 to the first "s" message would store it ahead of a1: it opens a message of its
    # own after a1's instead. Other jobs' events still share messages.
    items = [item("s", "x", 1), item("c", "a", 1), item("s", "a", 2), item("c", "b", 1)]
    assert stored(items) == [
        ("s", [("x", "1")]),
        ("c", [("a", "1"), ("b", "1")]),
        ("s", [("a", "2")]),
    ]
    items += [item("c", "a", 3), item("s", "y", 1)]
    order = [e for _, events in stored(items) for e in events if e[0] == "a"]
    assert order == [("a", "1"), ("a", "2"), ("a", "3")]
    assert len([e for _, events in stored(items) for e in events]) == len(items)


def test_messages_stay_within_their_count_and_size_bounds():
    many = [item("s", f"j{i}") for i in range(MAX_EVENTS_PER_MESSAGE * 2 + 1)]
    assert [len(events) for _, events in stored(many)] == [MAX_EVENTS_PER_MESSAGE] * 2 + [1]
    big = [item("s", f"j{i}", size=MAX_MESSAGE_BYTES // 3) for i in range(4)]
    sizes = [len(data) for _, data in pack(big)]
    assert len(sizes) == 2
    assert all(size <= MAX_MESSAGE_BYTES for size in sizes)
    assert [len(events) for _, events in stored(big)] == [2, 2]


def test_a_stored_message_tells_its_event_count_without_decoding():
    # `locate` counts the events it scans by their envelopes' first key: every event the
    # service layer builds must start with it.
    ctx = SimpleNamespace(clock=lambda: 1_700_000_000_000, source="ojs://test")
    event = orjson.dumps(event_at(ctx, "job.completed", "job-1", {"queue": "q"}))
    assert event.startswith(b'{"specversion"')
    items = [("s", f"j{i}", event) for i in range(7)]
    assert [_count(data) for _, data in pack(items)] == [7]
    assert _count(event) == 1
