"""The NATS protocol commands the storage layer writes itself (storage/connection.py)."""

from ojs_nats.storage.connection import _as_dict, _command, header_block


def test_a_plain_publish_without_reply():
    assert _command("ojs.ready.q.0", "", b"id 1", None) == b"PUB ojs.ready.q.0 4\r\nid 1\r\n"


def test_a_publish_with_reply_and_headers_counts_header_and_total_bytes():
    cmd = _command("ojs.kv", "_INBOX.x.1", b"{}", {"Nats-Expected-Last-Subject-Sequence": "7"})
    head = b"NATS/1.0\r\nNats-Expected-Last-Subject-Sequence: 7\r\n\r\n"
    assert cmd == b"HPUB ojs.kv _INBOX.x.1 %d %d\r\n%s{}\r\n" % (len(head), len(head) + 2, head)


def test_an_empty_payload_with_headers():
    cmd = _command("s", "", b"", {"Nats-Incr": "+1"})
    head = b"NATS/1.0\r\nNats-Incr: +1\r\n\r\n"
    assert cmd == b"HPUB s %d %d\r\n%s\r\n" % (len(head), len(head), head)


def test_a_header_block_written_ahead_is_sent_as_the_same_mapping_would_be():
    headers = {"Nats-Expected-Last-Subject-Sequence": "0", "Nats-Batch-Id": "b1"}
    block = header_block({"Nats-Expected-Last-Subject-Sequence": "0"}, "Nats-Batch-Id: b1\r\n")
    assert _command("s", "r", b"x", block) == _command("s", "r", b"x", headers)


def test_a_header_block_becomes_a_mapping_again_for_the_clients_own_publish():
    block = header_block({"Nats-Batch-Id": "b1"}, "Nats-Batch-Sequence: 3\r\n")
    assert _as_dict(block) == {"Nats-Batch-Id": "b1", "Nats-Batch-Sequence": "3"}
    assert _as_dict({"a": "1"}) == {"a": "1"}
    assert _as_dict(None) is None
