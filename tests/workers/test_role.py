"""srvdns.workers.role: what the supervisor tells a worker and what the worker reports."""

from __future__ import annotations

import os

import pytest

from srvdns.cli import build_parser
from srvdns.config import ListenAddress
from srvdns.errors import SrvdnsError
from srvdns.workers.launch import role_of
from srvdns.workers.role import Report, WorkerRole

LISTEN = (ListenAddress(host="127.0.0.1", port=0), ListenAddress(host="", port=0))


def test_the_role_round_trips_through_the_command_line() -> None:
    role = WorkerRole(number=2, count=3, dns_ports=(5353, 5354), api_port=8054, report_fd=7)
    args = build_parser().parse_args(["serve", "-c", "x.toml", "--worker-role", role.to_json()])
    assert role_of(args) == role
    assert role_of(build_parser().parse_args(["serve", "-c", "x.toml"])) is None


def test_a_bad_role_is_an_error() -> None:
    with pytest.raises(SrvdnsError, match="bad worker role"):
        WorkerRole.from_json('{"number": "one"}')


def test_the_first_primary_keeps_the_configured_ports() -> None:
    role = WorkerRole(number=1, count=2)
    assert role.is_primary
    assert role.dns_listen(LISTEN) == LISTEN
    assert role.api_listen(ListenAddress(host="127.0.0.1", port=0)).port == 0


def test_later_workers_bind_the_ports_already_chosen() -> None:
    role = WorkerRole(number=2, count=2, dns_ports=(5353, 5354), api_port=8054)
    assert not role.is_primary
    assert [(a.host, a.port) for a in role.dns_listen(LISTEN)] == [
        ("127.0.0.1", 5353),
        ("", 5354),
    ]
    assert role.api_listen(ListenAddress(host="127.0.0.1", port=0)).port == 8054
    with pytest.raises(SrvdnsError, match="restart srvdns"):
        role.dns_listen(LISTEN[:1])


def test_id_server_names_the_worker_only_when_there_are_several() -> None:
    assert WorkerRole(number=2, count=2).identity("ns1") == "ns1 worker 2"
    assert WorkerRole(number=1, count=1).identity("ns1") == "ns1"
    assert WorkerRole(number=2, count=2).identity(None) is None


def test_a_report_goes_through_the_pipe_once() -> None:
    read_end, write_end = os.pipe()
    WorkerRole(number=1, count=2, report_fd=write_end).report([5353], 8054)
    with os.fdopen(read_end, "rb") as pipe:
        assert Report.parse(pipe.read()) == Report((5353,), 8054)
    with pytest.raises(OSError, match="Bad file descriptor"):
        os.close(write_end)  # report closed it


def test_no_report_means_the_worker_died() -> None:
    with pytest.raises(SrvdnsError, match="exited before it listened"):
        Report.parse(b"")


@pytest.mark.parametrize("value", ["0", "129", "two"])
def test_workers_flag_is_checked(value: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args(["serve", "-c", "x.toml", "--workers", value])
    assert "--workers" in capsys.readouterr().err
