"""``srvdns export-zone`` against real registries: the files load into NSD and Knot."""

from __future__ import annotations

import subprocess
from pathlib import Path

import dns.rdatatype
import dns.zone
import pytest
from conformance.referees import check_zone
from conformance.world import World, export_zone
from e2e.harness import srvdns_command, start, write_config

pytestmark = pytest.mark.e2e


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*srvdns_command(), "export-zone", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def records(text: str, origin: str) -> set[str]:
    """Every record without its TTL (leased TTLs count down between two exports)."""
    zone = dns.zone.from_text(text, origin=origin, relativize=False)
    return {
        f"{name} {dns.rdatatype.to_text(rdataset.rdtype)} {rdata.to_text()}"
        for name, node in zone.nodes.items()
        for rdataset in node.rdatasets
        for rdata in rdataset
    }


@pytest.mark.parametrize("server", ["nsd", "knot"])
def test_every_exported_zone_passes_the_zone_checker(world: World, server: str) -> None:
    for zone, file in world.files.items():
        result = check_zone(server, zone, file, world.directory / f"check-{server}")
        assert result.returncode == 0, f"{server} rejects {file}:\n{result.stdout}{result.stderr}"


def test_the_export_is_a_master_file_with_the_soa_first(world: World) -> None:
    lines = world.files["service.local"].read_text().splitlines()
    assert lines[0].startswith("; zone service.local, serial ")
    assert lines[2:4] == ["$ORIGIN service.local.", "$TTL 5"]
    assert lines[4].split()[:4] == ["@", "60", "IN", "SOA"]
    assert {line.split()[3] for line in lines[4:]} == {"SOA", "NS", "A", "AAAA", "TXT", "SRV"}
    assert "big-199.instance.big" in "\n".join(lines)
    assert "g-1.instance.gone" not in "\n".join(lines), "its lease lapsed before the export"


def test_stdout_and_a_file_hold_the_same_zone(world: World) -> None:
    result = run("-c", str(world.srvdns.config), "--zone", "service.consul.")
    assert result.returncode == 0, result.stderr
    on_disk = world.files["service.consul"].read_text()
    assert records(result.stdout, "service.consul.") == records(on_disk, "service.consul.")


def test_the_first_zone_is_the_default(world: World) -> None:
    result = run("-c", str(world.srvdns.config))
    assert result.returncode == 0, result.stderr
    assert "$ORIGIN service.local." in result.stdout


def test_export_reads_the_registry_of_a_stopped_server(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    server = start(config)
    with server.http() as http:
        reply = http.put(
            "/v1/services/web/instances/web-1", json={"address": "10.0.0.1", "port": 80}
        )
        assert reply.status_code in (200, 201), reply.text
    assert server.stop() == 0
    out = tmp_path / "zones" / "service.local.zone"
    out.parent.mkdir()
    out.write_text("an older export\n")
    result = export_zone(config, "service.local", out)
    assert result.returncode == 0, result.stderr
    lines = [" ".join(line.split()) for line in out.read_text().splitlines()]
    assert "web-1.instance.web 5 IN A 10.0.0.1" in lines
    assert [p.name for p in out.parent.iterdir()] == [out.name], "no temporary file left"


def test_errors_name_the_problem_and_write_nothing(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    out = tmp_path / "zone"
    missing = run("-c", str(config), "-o", str(out))
    assert missing.returncode == 1
    assert "no registry database at" in missing.stderr
    assert not out.exists()
    assert not (tmp_path / "registry.db").exists(), "the export creates no database"

    unknown = run("-c", str(config), "--zone", "nope.example")
    assert unknown.returncode == 2
    assert "no zone 'nope.example' (the zones are: service.local)" in unknown.stderr

    config.write_text(config.read_text() + "\n[typo]\n")
    bad = run("-c", str(config))
    assert bad.returncode == 2
    assert "typo: unknown key" in bad.stderr
