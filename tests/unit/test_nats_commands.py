"""The NATS protocol commands the storage layer writes itself (storage/connection.py)."""

from ojs_nats.storage.connection import _command


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
