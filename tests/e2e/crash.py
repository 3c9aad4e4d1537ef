"""Crash safety: clients write over the API while ``srvdns serve`` is killed with SIGKILL.

Each round starts srvdns on the same SQLite file, lets several client threads register,
re-register, heartbeat and deregister their own instances concurrently, kills the server
with SIGKILL at a random moment, and checks the file (``PRAGMA integrity_check``) and,
after the next start, what the API and DNS report against the clients' logs:

- an instance whose last write was acknowledged is exactly in that state (registered
  with that version, or gone);
- an instance with a write in flight at the kill is in the state before it or after it,
  never anything else;
- every registered instance is whole: address, port, weight, tags and meta all carry
  the same version (no half-done write).

An acknowledged heartbeat is only required to keep its instance registered; its lease end
across a crash is not checked (heartbeats may be persisted in batches).

Used by ``tests/e2e/test_crash_safety.py`` (a short run) and ``bench/crash_safety.py``.
"""

from __future__ import annotations

import random
import signal
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dns.rdatatype
import httpx
from e2e.harness import SrvdnsProcess, start, write_config

SERVICES = 3
"""Instances are spread over this many services."""
TTL = "300s"
"""Every instance has a heartbeat lease this long, so it stays passing for the run."""

Version = int | None
"""The state of an instance: the version of its registration, or None when not registered."""


def body(version: int, owner: int) -> dict[str, Any]:
    """The registration of ``version``: every field depends on it, so a mix of two
    versions (a half-done write) shows."""
    return {
        "address": f"10.{owner % 250}.{version // 250 % 250}.{version % 250 + 1}",
        "port": 1000 + version % 60000,
        "weight": version % 65000,
        "tags": [f"v{version}", f"owner{owner}"],
        "meta": {"version": str(version), "owner": str(owner)},
        "ttl": TTL,
    }


def version_of(instance: dict[str, Any], owner: int) -> int | None:
    """The version an instance reported by the API carries, or None when its fields
    disagree (a half-done write)."""
    try:
        version = int(instance["meta"]["version"])
    except (KeyError, ValueError):
        return None
    wanted = body(version, owner)
    seen = {key: instance.get(key) for key in ("address", "port", "weight", "meta")}
    seen["tags"] = sorted(instance.get("tags", []))
    expected = {key: wanted[key] for key in ("address", "port", "weight", "meta")}
    expected["tags"] = sorted(wanted["tags"])
    return version if seen == expected else None


@dataclass
class Slot:
    """One instance a client owns: what it last got acknowledged and what is in flight."""

    service: str
    id: str
    acked: Version = None
    in_flight: tuple[Version] | None = None
    """The state the write in flight at the kill would leave (a one-tuple: None is a state)."""
    next_version: int = 1


@dataclass
class Tally:
    """Counts of one run."""

    acknowledged: dict[str, int] = field(
        default_factory=lambda: {"register": 0, "heartbeat": 0, "deregister": 0}
    )
    in_flight: int = 0
    lost: int = 0
    half_done: int = 0
    unexpected: int = 0
    rounds: int = 0
    integrity_ok: int = 0
    problems: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def writes(self) -> int:
        """Acknowledged writes of every kind."""
        return sum(self.acknowledged.values())

    def note(self, problem: str) -> None:
        with self.lock:
            if len(self.problems) < 50:
                self.problems.append(problem)

    def summary(self) -> str:
        kinds = ", ".join(f"{kind} {count}" for kind, count in self.acknowledged.items())
        return (
            f"rounds {self.rounds} (SIGKILL each); writes acknowledged {self.writes} "
            f"({kinds}); in flight at a kill {self.in_flight}; lost {self.lost}; "
            f"half-done {self.half_done}; unexpected answers {self.unexpected}; "
            f"integrity_check ok {self.integrity_ok}/{self.rounds}"
        )


class Client(threading.Thread):
    """Writes to its own slots until the server dies or ``stop`` is set."""

    def __init__(
        self, owner: int, slots: list[Slot], api: str, tally: Tally, stop: threading.Event
    ) -> None:
        super().__init__(name=f"crash-client-{owner}", daemon=True)
        self.owner, self.slots, self.api, self.tally, self.stop = owner, slots, api, tally, stop
        self.rng = random.Random(owner * 7919 + int(time.time() * 1000))

    def run(self) -> None:
        with httpx.Client(base_url=self.api, timeout=10) as http:
            while not self.stop.is_set():
                slot = self.rng.choice(self.slots)
                if not self.write(http, slot):
                    return

    def write(self, http: httpx.Client, slot: Slot) -> bool:
        """One write to ``slot``; False once the server is gone."""
        path = f"/v1/services/{slot.service}/instances/{slot.id}"
        if slot.acked is None:
            kind, version = "register", slot.next_version
        else:
            kind = self.rng.choice(["register", "register", "heartbeat", "heartbeat", "deregister"])
            version = slot.next_version if kind == "register" else slot.acked
        target: Version = None if kind == "deregister" else version
        request: Callable[[], httpx.Response]
        if kind == "register":
            slot.next_version += 1
            payload = body(version, self.owner)
            request = lambda: http.put(path, json=payload)  # noqa: E731
        elif kind == "heartbeat":
            request = lambda: http.put(f"{path}/heartbeat")  # noqa: E731
        else:
            request = lambda: http.delete(path)  # noqa: E731
        slot.in_flight = (target,)
        try:
            response = request()
        except httpx.TransportError:
            return False  # killed: the outcome of this write is either state
        slot.in_flight = None
        if response.is_success:
            slot.acked = target
            with self.tally.lock:
                self.tally.acknowledged[kind] += 1
            return True
        with self.tally.lock:
            self.tally.unexpected += 1
        self.tally.note(f"{kind} {path}: {response.status_code} {response.text[:200]}")
        return True


def integrity(database: Path) -> str:
    """``PRAGMA integrity_check`` of the file as the crash left it (read-only, so that
    closing does not checkpoint the WAL: srvdns itself recovers it at the next start)."""
    connection = sqlite3.connect(f"file:{database}?mode=ro", uri=True)
    try:
        return ", ".join(row[0] for row in connection.execute("PRAGMA integrity_check"))
    finally:
        connection.close()


def reported(server: SrvdnsProcess) -> dict[tuple[str, str], dict[str, Any]]:
    """Every instance the API reports, by (service, id)."""
    found: dict[tuple[str, str], dict[str, Any]] = {}
    with server.http() as http:
        listing = http.get("/v1/services")
        listing.raise_for_status()
        for summary in listing.json()["services"]:
            detail = http.get(f"/v1/services/{summary['name']}")
            detail.raise_for_status()
            for instance in detail.json()["instances"]:
                found[instance["service"], instance["id"]] = instance
    return found


def verify(server: SrvdnsProcess, owners: list[list[Slot]], tally: Tally) -> None:
    """Compare what the restarted server reports with every client's log, then take the
    reported state as the truth the next round starts from."""
    found = reported(server)
    known: set[tuple[str, str]] = set()
    for owner, slots in enumerate(owners):
        for slot in slots:
            key = (slot.service, slot.id)
            known.add(key)
            instance = found.get(key)
            state: Version = None
            if instance is not None:
                state = version_of(instance, owner)
                if state is None:
                    tally.half_done += 1
                    tally.note(f"{key}: half-done: {instance}")
                    continue
            allowed = {slot.acked} | ({slot.in_flight[0]} if slot.in_flight else set())
            if slot.in_flight is not None:
                tally.in_flight += 1
            if state not in allowed:
                tally.lost += 1
                tally.note(
                    f"{key}: acknowledged {slot.acked}, in flight {slot.in_flight}, found {state}"
                )
            slot.acked, slot.in_flight = state, None
            if state is not None:
                slot.next_version = max(slot.next_version, state + 1)
    for key in sorted(set(found) - known):
        tally.unexpected += 1
        tally.note(f"{key}: registered, but no client wrote it")
    for service in {slot.service for slots in owners for slot in slots}:
        registered = sum(1 for slots in owners for s in slots if s.service == service and s.acked)
        answer = server.query(f"{service}.service.local", "SRV", tcp=True)
        records = sum(len(rrset) for rrset in answer.answer if rrset.rdtype == dns.rdatatype.SRV)
        if records != registered:
            tally.note(f"{service}: DNS answers {records} SRV records, {registered} registered")
            tally.unexpected += 1


def run(
    directory: Path,
    *,
    rounds: int | None = None,
    duration: float | None = None,
    clients: int = 4,
    instances: int = 6,
    kill_after: tuple[float, float] = (0.2, 1.5),
    durability: str = "process",
    seed: int | None = None,
    progress: Callable[[str], None] | None = None,
) -> Tally:
    """Kill and restart srvdns ``rounds`` times, or until ``duration`` seconds have
    passed (at least once); ``clients`` threads own ``instances`` instances each.  Each
    kill comes a random ``kill_after`` seconds after the clients started writing.
    """
    rng = random.Random(seed)
    config = write_config(directory, server=f'durability = "{durability}"\n')
    database = directory / "registry.db"
    owners = [
        [Slot(f"crash{(owner + n) % SERVICES}", f"c{owner}-{n}") for n in range(instances)]
        for owner in range(clients)
    ]
    tally = Tally()
    started = time.monotonic()
    server = start(config)
    try:
        while True:
            stop = threading.Event()
            threads = [
                Client(owner, slots, server.api, tally, stop) for owner, slots in enumerate(owners)
            ]
            for thread in threads:
                thread.start()
            time.sleep(rng.uniform(*kill_after))
            server.stop(signal.SIGKILL)
            stop.set()
            for thread in threads:
                thread.join(timeout=30)
            tally.rounds += 1
            checked = integrity(database)
            if checked == "ok":
                tally.integrity_ok += 1
            else:
                tally.note(f"round {tally.rounds}: integrity_check: {checked}")
            server = start(config)
            verify(server, owners, tally)
            if progress is not None:
                progress(f"round {tally.rounds}: {tally.summary()}")
            elapsed = time.monotonic() - started
            if rounds is not None and tally.rounds >= rounds:
                break
            if rounds is None and (duration is None or elapsed >= duration):
                break
    finally:
        server.stop()
    return tally
