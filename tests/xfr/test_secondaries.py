"""NSD and Knot as secondaries of a live srvdns: they pull the zone, follow NOTIFY, and
answer what srvdns answers."""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator
from dataclasses import dataclass

import dns.message
import dns.query
import dns.rcode
import dns.rdatatype
import pytest
from conformance.referees import Referee, missing_binaries
from e2e.harness import SrvdnsProcess, start, write_config
from xfr.secondaries import enable_notify, launch_secondary, notify_line, wait_for_serial

pytestmark = pytest.mark.e2e

ZONE = "service.local"


@dataclass
class Hidden:
    """srvdns as the hidden primary and its two secondaries."""

    primary: SrvdnsProcess
    secondaries: list[Referee]

    def serial(self) -> int:
        reply = self.primary.query(ZONE, "SOA")
        return int(reply.answer[0][0].serial)

    def converge(self) -> None:
        serial = self.serial()
        for secondary in self.secondaries:
            wait_for_serial(secondary, ZONE, serial)


@pytest.fixture(scope="module")
def hidden(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hidden]:
    """srvdns, then NSD and Knot pulling from it, then srvdns told to notify them."""
    missing = missing_binaries()
    if missing:
        pytest.fail(f"these secondaries are not installed: {', '.join(missing)}")
    directory = tmp_path_factory.mktemp("secondaries")
    body = f"""\
        [[zone]]
        name = "{ZONE}"
        ttl = 5
        transfer_to = ["127.0.0.1"]

        [[zone.service]]
        name = "postgres"
        instances = [
          {{ address = "10.0.0.5", port = 5432, tags = ["primary"], meta = {{ role = "rw" }} }},
          {{ address = "2001:db8::6", port = 5432, tags = ["replica"] }},
        ]
        """
    primary = start(write_config(directory, body))
    hidden = Hidden(primary, [])
    try:
        for kind in ("nsd", "knot"):
            hidden.secondaries.append(
                launch_secondary(kind, directory, ZONE, primary.dns[0], hidden.serial())
            )
        enable_notify(primary, notify_line(hidden.secondaries))
        hidden.converge()  # the reload's new serial arrives by NOTIFY
        yield hidden
    finally:
        for secondary in hidden.secondaries:
            secondary.stop()
        primary.stop()


def register(hidden: Hidden, service: str, instance: str, body: dict[str, object]) -> None:
    with hidden.primary.http() as http:
        http.put(f"/v1/services/{service}/instances/{instance}", json=body).raise_for_status()


def deregister(hidden: Hidden, service: str, instance: str) -> None:
    with hidden.primary.http() as http:
        http.delete(f"/v1/services/{service}/instances/{instance}").raise_for_status()


def answer(host: str, port: int, qname: str, rdtype: str) -> tuple[str, frozenset[str]]:
    """The rcode and the answer section as a set of record texts (order ignored)."""
    query = dns.message.make_query(qname, rdtype)
    reply = dns.query.tcp(query, host, port=port, timeout=3)
    records = frozenset(
        f"{rrset.name} {rrset.ttl} {dns.rdatatype.to_text(rrset.rdtype)} {rdata.to_text()}"
        for rrset in reply.answer
        for rdata in rrset
    )
    return dns.rcode.to_text(reply.rcode()), records


def corpus(hidden: Hidden) -> list[tuple[str, str]]:
    """Every owner name of the transferred zone with every type, plus absent names."""
    host, port = hidden.primary.dns[0]
    owners = {
        rrset.name.to_text()
        for message in dns.query.xfr(host, ZONE, port=port, lifetime=10)
        for rrset in message.answer
    }
    owners |= {f"nothere.{ZONE}.", f"x.nothere.{ZONE}.", f"_tcp.{ZONE}.", f"instance.web.{ZONE}."}
    types = ["SOA", "NS", "SRV", "A", "AAAA", "TXT", "MX"]
    return [(owner, rdtype) for owner in sorted(owners) for rdtype in types]


def test_secondaries_answer_what_srvdns_answers(hidden: Hidden) -> None:
    register(hidden, "web", "web-1", {"address": "10.0.0.11", "port": 8080, "tags": ["v2"]})
    register(hidden, "web", "web-2", {"address": "10.0.0.12", "port": 8081, "meta": {"zone": "b"}})
    register(hidden, "cache", "Cache_1", {"address": "fd00::7", "port": 6379, "weight": 5})
    hidden.converge()
    questions = corpus(hidden)
    assert len(questions) > 100
    host, port = hidden.primary.dns[0]
    for secondary in hidden.secondaries:
        differences = [
            (qname, rdtype, ours, theirs)
            for qname, rdtype in questions
            if (ours := answer(host, port, qname, rdtype))
            != (theirs := answer(secondary.host, secondary.port, qname, rdtype))
        ]
        assert differences == [], secondary.name
    deregister(hidden, "cache", "Cache_1")


def _served(secondary: Referee, qname: str) -> bool:
    rcode, records = answer(secondary.host, secondary.port, qname, "SRV")
    return rcode == "NOERROR" and bool(records)


def test_a_registration_and_a_deregistration_reach_every_secondary(hidden: Hidden) -> None:
    """No waiting for SOA refresh (3600 s): NOTIFY brings each change within seconds."""
    qname = f"api.{ZONE}."
    register(hidden, "api", "api-1", {"address": "10.0.1.1", "port": 9000})
    deadline = time.monotonic() + 10
    pending = list(hidden.secondaries)
    while pending and time.monotonic() < deadline:
        pending = [s for s in pending if not _served(s, qname)]
        time.sleep(0.02)
    assert [s.name for s in pending] == []
    deregister(hidden, "api", "api-1")
    deadline = time.monotonic() + 10
    pending = list(hidden.secondaries)
    while pending and time.monotonic() < deadline:
        pending = [s for s in pending if _served(s, qname)]
        time.sleep(0.02)
    assert [s.name for s in pending] == []
    for secondary in hidden.secondaries:
        assert answer(secondary.host, secondary.port, qname, "SRV")[0] == "NXDOMAIN"


def test_secondaries_with_a_tsig_key_transfer_and_take_notify_signed(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """NSD and Knot sign their SOA checks and transfers and accept only signed NOTIFYs:
    srvdns must verify the one and sign the others."""
    directory = tmp_path_factory.mktemp("signed")
    secret = base64.b64encode(b"secondary-tsig-secret-32-octets!").decode()
    body = f"""\
        [[tsig_key]]
        name = "xfr-key"
        secret = "{secret}"

        [[zone]]
        name = "{ZONE}"
        transfer_to = [{{ address = "127.0.0.1", key = "xfr-key" }}]
        """
    primary = start(write_config(directory, body))
    hidden = Hidden(primary, [])
    try:
        key = ("xfr-key", secret)
        for kind in ("nsd", "knot"):
            hidden.secondaries.append(
                launch_secondary(kind, directory, ZONE, primary.dns[0], hidden.serial(), key)
            )
        enable_notify(primary, notify_line(hidden.secondaries, "xfr-key"))
        hidden.converge()
        register(hidden, "signed", "s1", {"address": "10.0.5.1", "port": 443})
        hidden.converge()
        for secondary in hidden.secondaries:
            assert _served(secondary, f"signed.{ZONE}.")
    finally:
        for secondary in hidden.secondaries:
            secondary.stop()
        primary.stop()
