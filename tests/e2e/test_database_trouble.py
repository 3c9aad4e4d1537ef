"""A live srvdns whose database stops taking writes, then takes them again.

While the database refuses writes, the API answers 503 with a JSON error and stores
nothing, DNS goes on answering from the snapshot, ``/readyz`` names the problem, and the
health loop keeps its results in memory; once the database is back, ``/readyz`` recovers
by itself and writes and the health loop's results land.

Ways to make the database refuse that work for root too (``chmod`` does not stop root):
holding SQLite's write lock from another connection beyond the busy timeout (always
available); ``chattr +i`` on the database and its WAL; a full disk (a 2 MiB tmpfs in a
mount namespace of srvdns's own); and removing the file.  The ``chattr`` and tmpfs tests
are skipped, saying why, where the file system or the privileges do not allow them.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from e2e import harness
from e2e.harness import SrvdnsProcess, srvdns_command, wait_for

LEASE = {"address": "10.0.0.9", "port": 9000, "ttl": "2s"}


def srv_ports(server: SrvdnsProcess, service: str) -> list[int]:
    answer = server.query(f"{service}.service.local", "SRV", tcp=True)
    return sorted(record.port for rrset in answer.answer for record in rrset)


def stored(database: Path, sql: str) -> list[tuple[object, ...]]:
    """Rows read from the file by a connection of the test's own."""
    connection = sqlite3.connect(database, timeout=10)
    try:
        return connection.execute(sql).fetchall()
    finally:
        connection.close()


def lease_status(database: Path) -> str | None:
    rows = stored(
        database,
        "SELECT c.status FROM checks c JOIN instances i ON c.instance_pk = i.id "
        "WHERE i.instance_id = 'x'",
    )
    return str(rows[0][0]) if rows else None


def live_lease_status(http: httpx.Client) -> str:
    (instance,) = http.get("/v1/services/lease").json()["instances"]
    return str(instance["checks"][0]["status"])


def registered(database: Path) -> list[str]:
    return sorted(str(row[0]) for row in stored(database, "SELECT instance_id FROM instances"))


@pytest.fixture
def server(launch: Callable[..., SrvdnsProcess]) -> SrvdnsProcess:
    """srvdns with web/a (port 8001) and lease/x (a 2 s lease nobody renews)."""
    proc = launch()
    with proc.http() as http:
        web = {"address": "10.0.0.1", "port": 8001}
        assert http.put("/v1/services/web/instances/a", json=web).status_code == 201
        assert http.put("/v1/services/lease/instances/x", json=LEASE).status_code == 201
    return proc


def client(server: SrvdnsProcess) -> httpx.Client:
    """A client patient enough for writes that wait out the busy timeout."""
    return httpx.Client(base_url=server.api, timeout=30)


def assert_refused_while_down(server: SrvdnsProcess, http: httpx.Client, reason: str) -> None:
    """503 with a JSON error, nothing stored, DNS answering, /readyz naming ``reason``."""
    response = http.put("/v1/services/web/instances/b", json={"address": "10.0.0.2", "port": 8002})
    assert response.status_code == 503
    error = response.json()["error"]
    assert error.startswith("registry database failed to ")
    assert "nothing was stored" in error
    assert reason in error
    assert [i["id"] for i in http.get("/v1/services/web").json()["instances"]] == ["a"]
    assert srv_ports(server, "web") == [8001]
    assert "8001" in server.dig("+short", "SRV", "web.service.local")
    ready = http.get("/readyz")
    assert ready.status_code == 503
    assert ready.json()["checks"]["database"].startswith("error: ")


def assert_recovered(server: SrvdnsProcess, http: httpx.Client, database: Path) -> None:
    """/readyz ready again by itself, the lapsed lease recorded, writes landing."""
    try:
        wait_for(lambda: http.get("/readyz").status_code == 200, timeout=15)
        wait_for(lambda: lease_status(database) == "critical", timeout=15)
    except AssertionError:
        raise AssertionError(http.get("/readyz").text + "\n" + "\n".join(server.log)) from None
    response = http.put("/v1/services/web/instances/b", json={"address": "10.0.0.2", "port": 8002})
    assert response.status_code == 201
    assert srv_ports(server, "web") == [8001, 8002]
    assert registered(database) == ["a", "b", "x"]
    assert stored(database, "PRAGMA integrity_check") == [("ok",)]


def test_a_held_write_lock(server: SrvdnsProcess) -> None:
    database = server.config.parent / "registry.db"
    holder = sqlite3.connect(database, isolation_level=None)
    try:
        holder.execute("BEGIN EXCLUSIVE")  # held beyond srvdns's 5 s busy timeout
        with client(server) as http:
            assert_refused_while_down(server, http, "database is locked")
            assert http.get("/readyz").json()["checks"]["database"] == "error: database is locked"
            # the lease lapsed meanwhile: DNS drops it, the health loop cannot store it yet
            assert srv_ports(server, "lease") == []
            assert holder.execute("SELECT instance_id FROM instances").fetchall() == [
                ("a",),
                ("x",),
            ]
            # the health loop holds the lapse in memory (and shows it) until it can write it
            wait_for(lambda: live_lease_status(http) == "critical", timeout=10)
            assert holder.execute("SELECT status FROM checks").fetchall() == [("passing",)]
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    with client(server) as http:
        assert_recovered(server, http, database)


@contextmanager
def immutable(*paths: Path) -> Iterator[None]:
    """``chattr +i`` on ``paths`` (never the -shm file: SQLite maps it, and a write
    to an immutable mapping is SIGBUS), undone at the end."""
    done: list[Path] = []
    try:
        for path in paths:
            result = subprocess.run(["chattr", "+i", str(path)], capture_output=True, text=True)
            if result.returncode != 0:
                pytest.skip(f"chattr +i is not available here: {result.stderr.strip()}")
            done.append(path)
        yield
    finally:
        for path in done:
            subprocess.run(["chattr", "-i", str(path)], check=True)


def test_a_read_only_database_file(server: SrvdnsProcess) -> None:
    database = server.config.parent / "registry.db"
    if subprocess.run(["which", "chattr"], capture_output=True).returncode != 0:
        pytest.skip("chattr is not installed (Debian package e2fsprogs)")
    with client(server) as http:
        with immutable(database, database.with_name("registry.db-wal")):
            response = http.put(
                "/v1/services/web/instances/b", json={"address": "10.0.0.2", "port": 8002}
            )
            assert response.status_code == 503
            assert "nothing was stored" in response.json()["error"]
            assert_refused_while_down(server, http, "readonly database")
            ready = http.get("/readyz").json()["checks"]["database"]
            assert ready == "error: attempt to write a readonly database"
            wait_for(lambda: srv_ports(server, "lease") == [], timeout=5)
        assert_recovered(server, http, database)


def test_a_removed_database_file_is_never_written_to(server: SrvdnsProcess) -> None:
    directory = server.config.parent
    for path in directory.glob("registry.db*"):
        path.unlink()
    with client(server) as http:
        assert_refused_while_down(server, http, "was removed while srvdns was running")
        assert "removed" in http.get("/readyz").json()["checks"]["database"]
    assert not (directory / "registry.db").exists()


def tiny_disk_command(mountpoint: Path) -> list[str]:
    """srvdns's command, run in a mount namespace of its own where ``mountpoint`` is a
    2 MiB tmpfs holding a 512 KiB ``filler`` file; nothing outside the process sees it."""
    script = (
        'mount -t tmpfs -o size=2m srvdns-test "$0" '
        '&& dd if=/dev/zero of="$0/filler" bs=64k count=8 2>/dev/null && exec "$@"'
    )
    return ["unshare", "--mount", "--propagation", "private", "sh", "-c", script, str(mountpoint)]


def stored_inside(server: SrvdnsProcess, database: Path, sql: str) -> list[str]:
    """The first column of ``sql``'s rows, read in srvdns's mount namespace (SQLite resolves
    /proc/PID/root, so the file cannot be opened from outside)."""
    script = (
        "import json, sqlite3, sys; c = sqlite3.connect(sys.argv[1]); "
        "print(json.dumps(sorted(str(r[0]) for r in c.execute(sys.argv[2]))))"
    )
    enter = ["nsenter", f"--mount=/proc/{server.process.pid}/ns/mnt"]
    result = subprocess.run(
        [*enter, sys.executable, "-c", script, str(database), sql],
        capture_output=True,
        text=True,
        check=True,
    )
    return list(json.loads(result.stdout))


def test_a_full_disk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    disk = tmp_path / "disk"
    disk.mkdir()
    probe = subprocess.run(
        [*tiny_disk_command(disk), "true"], capture_output=True, text=True, check=False
    )
    if probe.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs in a mount namespace here: {probe.stderr.strip()}")
    config = tmp_path / "srvdns.toml"
    config.write_text(
        "[server]\n"
        'dns_listen = ["127.0.0.1:0"]\n'
        'api_listen = "127.0.0.1:0"\n'
        f'database = "sqlite:///{disk}/registry.db"\n'
        '[[zone]]\nname = "service.local"\n'
    )
    command = [*tiny_disk_command(disk), *srvdns_command()]
    monkeypatch.setattr(harness, "srvdns_command", lambda: command)
    server = harness.start(config)
    try:
        inside = Path(f"/proc/{server.process.pid}/root") / disk.relative_to("/")
        big = {"address": "10.0.0.1", "port": 8001, "meta": {f"k{n}": "v" * 500 for n in range(40)}}
        with client(server) as http:
            refused = None
            for n in range(400):
                response = http.put(f"/v1/services/web/instances/i{n}", json=big)
                if response.status_code != 201:
                    refused = n
                    break
            assert refused, "the disk never filled up"
            assert response.status_code == 503
            assert response.json()["error"].endswith("nothing was stored: database or disk is full")
            listed = {i["id"] for i in http.get("/v1/services/web").json()["instances"]}
            assert listed == {f"i{n}" for n in range(refused)}
            assert len(srv_ports(server, "web")) == refused  # DNS answers from the snapshot
            (inside / "filler").unlink()  # room again
            wait_for(lambda: http.get("/readyz").status_code == 200, timeout=15)
            # A WAL checkpoint copying pages into the database file may take some of the
            # room first (SQLite's doing, not a lost write): the client asks again, as a
            # client of a 503 does, until the write goes through.
            wait_for(
                lambda: (
                    http.put(f"/v1/services/web/instances/i{refused}", json=big).status_code == 201
                ),
                timeout=15,
                interval=0.2,
            )
            assert len(srv_ports(server, "web")) == refused + 1
            database = disk / "registry.db"
            ids = sorted(listed | {f"i{refused}"})
            assert stored_inside(server, database, "SELECT instance_id FROM instances") == ids
            assert stored_inside(server, database, "PRAGMA integrity_check") == ["ok"]
    finally:
        server.stop()
