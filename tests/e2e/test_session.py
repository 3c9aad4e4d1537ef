"""The README's first session, step by step, against a real srvdns process."""

from __future__ import annotations

import json

import dns.flags
import dns.rcode
import dns.rdatatype
from e2e.harness import SrvdnsProcess


def register_web(srvdns: SrvdnsProcess) -> None:
    with srvdns.http() as http:
        response = http.put(
            "/v1/services/web/instances/web-1",
            json={"address": "10.0.0.11", "port": 8080, "tags": ["v2"], "ttl": "30s"},
        )
    assert response.status_code in (200, 201), response.text
    body = response.json()
    assert body["address"] == "10.0.0.11"
    assert body["port"] == 8080
    assert body["tags"] == ["v2"]


def test_register_then_dig_srv_and_a(srvdns: SrvdnsProcess, dig: str) -> None:
    register_web(srvdns)

    srv = srvdns.dig("web.service.local", "SRV")
    assert "status: NOERROR" in srv
    assert " aa" in srv.split("flags:")[1].split(";")[0]
    assert "SRV\t0 1 8080 web-1.instance.web.service.local." in srv
    additional = srv.split(";; ADDITIONAL SECTION:")[1]
    assert "web-1.instance.web.service.local. 5 IN\tA\t10.0.0.11" in additional

    a = srvdns.dig("web.service.local", "A", "+short")
    assert a.split() == ["10.0.0.11"]


def test_dnspython_udp_and_tcp_agree(srvdns: SrvdnsProcess) -> None:
    register_web(srvdns)
    for tcp in (False, True):
        reply = srvdns.query("web.service.local", "SRV", tcp=tcp)
        assert reply.rcode() == dns.rcode.NOERROR
        assert reply.flags & dns.flags.AA
        assert not reply.flags & dns.flags.RA
        (rrset,) = reply.answer
        assert rrset.rdtype == dns.rdatatype.SRV
        assert [r.to_text() for r in rrset] == ["0 1 8080 web-1.instance.web.service.local."]
        assert [r.to_text() for rr in reply.additional for r in rr] == ["10.0.0.11"]


def test_ls_shows_table_and_json(srvdns: SrvdnsProcess) -> None:
    register_web(srvdns)
    table = srvdns.cli("ls", "--api", srvdns.api)
    assert table.returncode == 0, table.stderr
    header, *rows = table.stdout.strip().splitlines()
    assert header.split()[:3] == ["NAME", "INSTANCES", "HEALTHY"]
    assert rows[0].split()[:3] == ["web", "1", "1"]

    one = srvdns.cli("ls", "web", "--api", srvdns.api)
    assert one.returncode == 0, one.stderr
    assert "web-1" in one.stdout
    assert "10.0.0.11" in one.stdout
    assert "passing" in one.stdout

    as_json = srvdns.cli("ls", "--json", "--api", srvdns.api)
    assert as_json.returncode == 0, as_json.stderr
    services = json.loads(as_json.stdout)
    assert [s["name"] for s in services] == ["web"]


def test_cli_register_heartbeat_deregister(srvdns: SrvdnsProcess) -> None:
    api = ["--api", srvdns.api]
    made = srvdns.cli(
        "register", "db", "db-1", "--address", "::1", "--port", "5432",
        "--tag", "primary", "--meta", "version=16", "--ttl", "30s", *api,
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    reply = srvdns.query("primary.db.service.local", "AAAA")
    assert [r.to_text() for rr in reply.answer for r in rr] == ["::1"]

    beat = srvdns.cli("heartbeat", "db", "db-1", *api)
    assert beat.returncode == 0, beat.stderr

    gone = srvdns.cli("deregister", "db", "db-1", *api)
    assert gone.returncode == 0, gone.stderr
    assert srvdns.query("db.service.local", "AAAA").rcode() == dns.rcode.NXDOMAIN

    missing = srvdns.cli("deregister", "db", "db-1", *api)
    assert missing.returncode == 1
    assert "not" in missing.stderr.lower()


def test_example_config_serves_its_static_services(tmp_path, launch) -> None:  # type: ignore[no-untyped-def]
    from pathlib import Path

    example = Path(__file__).resolve().parents[2] / "zones.example.toml"
    text = example.read_text()
    text = text.replace('dns_listen = ["127.0.0.1:8053"]', 'dns_listen = ["127.0.0.1:0"]')
    text = text.replace('api_listen = "127.0.0.1:8054"', 'api_listen = "127.0.0.1:0"')
    assert text.count(":0") >= 2
    config = tmp_path / "zones.toml"
    config.write_text(text)
    server = launch(config=config)
    reply = server.query("postgres.service.local", "SRV")
    assert len(reply.answer[0]) == 2
    assert reply.answer[0].ttl == 30  # service_ttl override
    cache = server.query("redis.cache.service.local", "AAAA")
    assert [r.to_text() for rr in cache.answer for r in rr] == ["::1"]
    register_web(server)
    assert server.dig("web.service.local", "A", "+short").split() == ["10.0.0.11"]
    assert (tmp_path / "srvdns.db").exists()  # relative to the config file
