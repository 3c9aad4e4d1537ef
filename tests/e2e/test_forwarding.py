"""``[forward]``: names outside every zone resolved through an upstream, for allowed clients."""

from __future__ import annotations

import signal
from collections.abc import Callable, Iterator

import dns.flags
import dns.rcode
import pytest
from e2e.harness import SrvdnsProcess, wait_for
from fakeupstream import FakeUpstream

ZONE = """\
[[zone]]
name = "service.local"
ttl = 5

[[zone.service]]
name = "web"
instances = [{ address = "10.0.0.11", port = 8080 }]
"""


@pytest.fixture
def upstream() -> Iterator[FakeUpstream]:
    with FakeUpstream() as server:
        yield server


def forward_block(upstream: FakeUpstream, extra: str = "") -> str:
    return f'\n[forward]\nupstreams = ["127.0.0.1:{upstream.port}"]\ntimeout = "1s"\n{extra}\n'


def addresses(reply: object) -> list[str]:
    return sorted(rr.to_text() for rrset in reply.answer for rr in rrset)  # type: ignore[attr-defined]


def test_outside_names_forwarded_with_ra(
    launch: Callable[..., SrvdnsProcess], upstream: FakeUpstream
) -> None:
    srvdns = launch(ZONE + forward_block(upstream))
    for tcp in (False, True):
        reply = srvdns.query("www.example.test", "A", tcp=tcp)
        assert reply.rcode() == dns.rcode.NOERROR
        assert reply.flags & dns.flags.RA
        assert not reply.flags & dns.flags.AA
        assert addresses(reply) == ["192.0.2.1"]
    missing = srvdns.query("nothing.example.test", "A")
    assert missing.rcode() == dns.rcode.NXDOMAIN
    assert missing.flags & dns.flags.RA
    # a large answer: TC over UDP, all of it over TCP
    assert srvdns.query("big.example.test", "A", use_edns=False).flags & dns.flags.TC
    assert len(addresses(srvdns.query("big.example.test", "A", tcp=True))) == 60
    # in-zone names stay authoritative, now with RA
    own = srvdns.query("web.service.local", "A")
    assert own.rcode() == dns.rcode.NOERROR
    assert own.flags & dns.flags.AA
    assert own.flags & dns.flags.RA
    assert addresses(own) == ["10.0.0.11"]
    assert srvdns.query("nope.service.local", "A").rcode() == dns.rcode.NXDOMAIN
    assert "192.0.2.1" in srvdns.dig("www.example.test", "A", "+short")


def test_clients_outside_allow_from_refused(
    launch: Callable[..., SrvdnsProcess], upstream: FakeUpstream
) -> None:
    srvdns = launch(ZONE + forward_block(upstream, 'allow_from = ["192.0.2.0/24"]'))
    for tcp in (False, True):
        reply = srvdns.query("www.example.test", "A", tcp=tcp)
        assert reply.rcode() == dns.rcode.REFUSED
        assert not reply.flags & dns.flags.RA
    own = srvdns.query("web.service.local", "A")
    assert own.flags & dns.flags.AA
    assert not own.flags & dns.flags.RA
    assert upstream.queries == 0


def test_forwarding_off_by_default(launch: Callable[..., SrvdnsProcess]) -> None:
    srvdns = launch(ZONE)
    reply = srvdns.query("www.example.test", "A")
    assert reply.rcode() == dns.rcode.REFUSED
    assert not reply.flags & dns.flags.RA


def test_reload_turns_forwarding_on(
    launch: Callable[..., SrvdnsProcess], upstream: FakeUpstream
) -> None:
    srvdns = launch(ZONE)
    assert srvdns.query("www.example.test", "A").rcode() == dns.rcode.REFUSED
    srvdns.config.write_text(srvdns.config.read_text() + forward_block(upstream))
    srvdns.process.send_signal(signal.SIGHUP)
    wait_for(lambda: srvdns.query("www.example.test", "A").rcode() == dns.rcode.NOERROR)
    assert srvdns.query("www.example.test", "A").flags & dns.flags.RA
