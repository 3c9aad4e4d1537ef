"""The per-query log line: what it says in text and in JSON, whatever the query."""

from __future__ import annotations

import json
import logging

import dns.message
import dns.rdatatype
import pytest

from srvdns.logs import JsonFormatter
from srvdns.nameserver.querylog import LOGGER, QueryLog


def reply_to(wire: bytes, rcode: int) -> bytes:
    return wire[:2] + bytes((0x84, rcode)) + wire[4:]


def test_text_line(caplog: pytest.LogCaptureFixture) -> None:
    wire = dns.message.make_query("Web.Service.Local", dns.rdatatype.SRV).to_wire()
    with caplog.at_level(logging.INFO, logger=LOGGER):
        QueryLog().record("udp", "127.0.0.1", 5353, wire, reply_to(wire, 3), 0.0000125)
        QueryLog().record("tcp", "::1", 40000, wire, None, 0.5)
    assert [r.getMessage() for r in caplog.records] == [
        "127.0.0.1:5353 udp Web.Service.Local. SRV NXDOMAIN 0.000013s",
        "[::1]:40000 tcp Web.Service.Local. SRV - 0.500000s",
    ]


def test_json_fields(caplog: pytest.LogCaptureFixture) -> None:
    wire = dns.message.make_query("a.service.local", 65280, use_edns=1).to_wire()
    with caplog.at_level(logging.INFO, logger=LOGGER):
        QueryLog().record("udp", "10.0.0.9", 1024, wire, reply_to(wire, 0), 0.002)
    entry = json.loads(JsonFormatter().format(caplog.records[0]))
    assert entry["logger"] == LOGGER
    assert {k: entry[k] for k in entry if k not in ("time", "level", "logger", "message")} == {
        "client": "10.0.0.9",
        "client_port": 1024,
        "transport": "udp",
        "qname": "a.service.local.",
        "qtype": "TYPE65280",
        "rcode": "BADVERS",
        "duration": 0.002,
    }


def test_garbage_is_logged_without_a_question(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger=LOGGER):
        QueryLog().record("udp", "127.0.0.1", 1, b"\x00\x01\x00", None, 0.0)
    assert caplog.records[0].getMessage() == "127.0.0.1:1 udp - - - 0.000000s"


def test_the_query_logger_logs_info_whatever_the_root_level() -> None:
    QueryLog()
    assert logging.getLogger(LOGGER).isEnabledFor(logging.INFO)
