"""Zone transfers from a real ``srvdns serve``: dnspython, dig and kdig as clients."""

from __future__ import annotations

import base64
import shutil
import signal
import subprocess
from collections.abc import Callable

import dns.message
import dns.query
import dns.rcode
import dns.tsig
import dns.tsigkeyring
import dns.xfr
import dns.zone
import pytest
from e2e.harness import SrvdnsProcess, wait_for

pytestmark = pytest.mark.e2e

ZONE = "service.local"
SECRET = base64.b64encode(b"transfer-secret-of-32-octets!!!!").decode()
WRONG = base64.b64encode(b"another-secret-of-32-octets!!!!!").decode()

OPEN = f"""\
    [[zone]]
    name = "{ZONE}"
    ttl = 5
    transfer_to = ["127.0.0.1"]

    [[zone.service]]
    name = "postgres"
    instances = [{{ address = "10.0.0.5", port = 5432 }}]
    """

SIGNED = f"""\
    [[tsig_key]]
    name = "xfr-key"
    secret = "{SECRET}"

    [[zone]]
    name = "{ZONE}"
    ttl = 5
    transfer_to = [{{ address = "127.0.0.0/8", key = "xfr-key" }}]

    [[zone.service]]
    name = "postgres"
    instances = [{{ address = "10.0.0.5", port = 5432 }}]
    """


def kdig(srvdns: SrvdnsProcess, *args: str) -> subprocess.CompletedProcess[str]:
    path = shutil.which("kdig")
    if path is None:
        pytest.fail("kdig is not installed (Debian package knot-dnsutils)")
    return subprocess.run(
        [path, f"@{srvdns.host}", "-p", str(srvdns.port), "+time=3", "+retry=0", *args],
        capture_output=True,
        text=True,
        timeout=15,
        check=False,
    )


def transfer(srvdns: SrvdnsProcess, **kw: object) -> dns.zone.Zone:
    zone = dns.zone.Zone(f"{ZONE}.", relativize=False)
    dns.query.inbound_xfr(srvdns.host, zone, port=srvdns.port, lifetime=10, **kw)  # type: ignore[arg-type]
    return zone


def serial(srvdns: SrvdnsProcess) -> int:
    return int(srvdns.query(ZONE, "SOA").answer[0][0].serial)


def test_axfr_holds_what_dns_answers(launch: Callable[..., SrvdnsProcess]) -> None:
    srvdns = launch(OPEN)
    with srvdns.http() as http:
        http.put(
            "/v1/services/web/instances/web-1", json={"address": "10.0.0.11", "port": 8080}
        ).raise_for_status()
    zone = transfer(srvdns)
    assert zone.get_soa().serial == serial(srvdns)
    srv = zone.find_rdataset(f"web.{ZONE}.", "SRV")
    answer = srvdns.query(f"web.{ZONE}", "SRV").answer[0]
    assert {r.to_text() for r in srv} == {r.to_text() for r in answer}
    out = srvdns.dig(ZONE, "AXFR")
    assert "web-1.instance.web.service.local. 5 IN A 10.0.0.11" in " ".join(out.split())
    assert out.count("SOA") >= 2


def test_ixfr_applies_a_registration_and_a_deregistration(
    launch: Callable[..., SrvdnsProcess],
) -> None:
    srvdns = launch(OPEN)
    zone = transfer(srvdns)
    old = zone.get_soa().serial
    with srvdns.http() as http:
        http.put(
            "/v1/services/web/instances/web-1", json={"address": "10.0.0.11", "port": 8080}
        ).raise_for_status()
        http.delete("/v1/services/postgres/instances/postgres-1")  # static: refused
        http.put(
            "/v1/services/api/instances/a1", json={"address": "10.0.0.12", "port": 80}
        ).raise_for_status()
        http.delete("/v1/services/api/instances/a1").raise_for_status()
    query, _ = dns.xfr.make_query(zone)
    assert query.question[0].rdtype == dns.rdatatype.IXFR
    dns.query.inbound_xfr(srvdns.host, zone, query, port=srvdns.port, lifetime=10)
    assert zone.get_soa().serial > old
    whole = transfer(srvdns)
    assert zone == whole
    assert zone.get_node(f"api.{ZONE}.") is None
    assert zone.get_node(f"web.{ZONE}.") is not None
    over_udp = dig_short(srvdns, f"IXFR={whole.get_soa().serial}")
    assert len(over_udp) == 1  # current: the SOA alone, over UDP


def dig_short(srvdns: SrvdnsProcess, *args: str) -> list[str]:
    return srvdns.dig(ZONE, *args, "+notcp", "+short").split("\n")[:-1]


def test_a_transfer_from_an_address_not_in_transfer_to_is_refused(
    launch: Callable[..., SrvdnsProcess],
) -> None:
    srvdns = launch(OPEN)
    with pytest.raises(dns.xfr.TransferError) as refused:
        transfer(srvdns, source="127.0.0.2")
    assert refused.value.rcode == dns.rcode.REFUSED
    query = dns.message.make_query(ZONE, "AXFR")
    reply = dns.query.udp(query, srvdns.host, port=srvdns.port, source="127.0.0.2", timeout=3)
    assert reply.rcode() == dns.rcode.REFUSED
    out = kdig(srvdns, "-b", "127.0.0.2", ZONE, "AXFR")
    assert "REFUSED" in out.stdout + out.stderr
    assert "10.0.0.5" not in out.stdout
    assert transfer(srvdns).get_soa() is not None  # 127.0.0.1 is in transfer_to


def test_tsig_right_key_transfers_wrong_key_and_no_key_do_not(
    launch: Callable[..., SrvdnsProcess],
) -> None:
    srvdns = launch(SIGNED)
    right = dns.tsigkeyring.from_text({"xfr-key.": ("hmac-sha256", SECRET)})
    wrong = dns.tsigkeyring.from_text({"xfr-key.": ("hmac-sha256", WRONG)})
    query = dns.message.make_query(ZONE, "AXFR")
    query.use_tsig(right, keyname="xfr-key.")
    zone = dns.zone.Zone(f"{ZONE}.", relativize=False)
    dns.query.inbound_xfr(srvdns.host, zone, query, port=srvdns.port, lifetime=10)
    assert zone.find_rdataset(f"postgres.{ZONE}.", "A")
    bad = dns.message.make_query(ZONE, "AXFR")
    bad.use_tsig(wrong, keyname="xfr-key.")
    with pytest.raises(dns.tsig.PeerBadSignature):
        dns.query.inbound_xfr(srvdns.host, zone, bad, port=srvdns.port, lifetime=10)
    with pytest.raises(dns.xfr.TransferError) as refused:
        transfer(srvdns)
    assert refused.value.rcode == dns.rcode.REFUSED

    good = kdig(srvdns, "-y", f"hmac-sha256:xfr-key:{SECRET}", ZONE, "AXFR")
    assert good.returncode == 0, good.stderr
    assert "10.0.0.5" in good.stdout
    assert "NOERROR" in good.stdout  # the TSIG record of each message
    forged = kdig(srvdns, "-y", f"hmac-sha256:xfr-key:{WRONG}", ZONE, "AXFR")
    assert "BADSIG" in forged.stdout + forged.stderr
    assert "10.0.0.5" not in forged.stdout
    unknown = kdig(srvdns, "-y", f"hmac-sha256:other-key:{SECRET}", ZONE, "AXFR")
    assert "BADKEY" in unknown.stdout + unknown.stderr
    signed_soa = kdig(srvdns, "-y", f"hmac-sha256:xfr-key:{SECRET}", ZONE, "SOA")
    assert signed_soa.returncode == 0, signed_soa.stderr
    assert "TSIG" in signed_soa.stdout


def test_the_serial_moves_on_at_a_restart_and_at_a_reload_with_new_ttls(
    launch: Callable[..., SrvdnsProcess],
) -> None:
    srvdns = launch(OPEN)
    first = serial(srvdns)
    srvdns.stop()
    again = launch(config=srvdns.config)
    second = serial(again)
    assert second > first
    before = transfer(again)
    assert before.find_rdataset(f"postgres.{ZONE}.", "A").ttl == 5
    again.config.write_text(again.config.read_text().replace("ttl = 5", "ttl = 9"))
    again.process.send_signal(signal.SIGHUP)
    wait_for(lambda: serial(again) > second)
    after = transfer(again)
    assert after.find_rdataset(f"postgres.{ZONE}.", "A").ttl == 9
    assert after.get_soa().serial > before.get_soa().serial
