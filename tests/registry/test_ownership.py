"""Check leases among nodes sharing a registry (``registry.ownership``): fair shares, no
check owned twice, a dead node's checks moving to the survivors, a joining node getting
its share.  Runs on SQLite, and on PostgreSQL when SRVDNS_TEST_POSTGRES_URL is set."""

from __future__ import annotations

import random
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from srvdns.registry import migrate, ownership
from srvdns.registry.engine import create_engine
from srvdns.registry.ownership import CheckKey, Round
from srvdns.registry.tables import check_owners, nodes

LEASE = 10.0
T0 = 1_700_000_000.0
CHECKS: set[CheckKey] = {("web", f"web-{n}", "http") for n in range(10)}


@pytest.fixture
def engine(url: str) -> Iterator[Engine]:
    migrate.upgrade(url)
    engine = create_engine(url)
    yield engine
    engine.dispose()


def run(engine: Engine, node: str, now: float, wanted: set[CheckKey] = CHECKS) -> Round:
    with engine.begin() as conn:
        return ownership.lease_round(conn, node, wanted, now, LEASE, random.Random(1))


def owners(engine: Engine) -> dict[CheckKey, str]:
    with engine.connect() as conn:
        return {
            (r.service, r.instance_id, r.check_id): r.node_id
            for r in conn.execute(sa.select(check_owners))
        }


def test_a_lone_node_owns_every_check(engine):
    result = run(engine, "a", T0)
    assert result.owned == CHECKS
    assert (result.live_nodes, result.share, result.claimed) == (1, 10, 10)
    assert set(owners(engine).values()) == {"a"}


def test_two_nodes_split_the_checks_and_never_share_one(engine):
    run(engine, "a", T0)
    b = run(engine, "b", T0 + 1)  # a holds everything still
    assert b.owned == frozenset()
    assert b.live_nodes == 2
    a = run(engine, "a", T0 + 2)  # a sees b and releases down to its share
    assert (len(a.owned), a.released) == (5, 5)
    b = run(engine, "b", T0 + 3)
    assert len(b.owned) == 5
    assert a.owned.isdisjoint(b.owned)
    assert a.owned | b.owned == CHECKS
    assert owners(engine) == {**dict.fromkeys(a.owned, "a"), **dict.fromkeys(b.owned, "b")}


def test_a_dead_nodes_checks_move_to_the_survivor_after_its_lease(engine):
    run(engine, "a", T0)
    run(engine, "b", T0 + 1)
    a = run(engine, "a", T0 + 2)
    b = run(engine, "b", T0 + 3)
    # a dies: b keeps renewing, but a's leases run until T0 + 2 + LEASE
    b = run(engine, "b", T0 + 6)
    assert b.owned.isdisjoint(a.owned)
    b = run(engine, "b", T0 + 2 + LEASE + 0.1)
    assert b.live_nodes == 1
    assert b.owned == CHECKS
    assert set(owners(engine).values()) == {"b"}


def test_checks_that_are_gone_are_released(engine):
    run(engine, "a", T0)
    fewer = {key for key in CHECKS if key[1] != "web-0"}
    result = run(engine, "a", T0 + 1, fewer)
    assert result.owned == fewer
    assert set(owners(engine)) == fewer


def test_a_new_check_is_claimed_by_a_node_below_its_share(engine):
    run(engine, "a", T0, set())
    result = run(engine, "a", T0 + 1)
    assert result.owned == CHECKS


def test_leave_hands_everything_back(engine):
    run(engine, "a", T0)
    run(engine, "b", T0 + 1)
    with engine.begin() as conn:
        ownership.leave(conn, "a")
        assert conn.execute(sa.select(nodes.c.node_id)).scalars().all() == ["b"]
    assert run(engine, "b", T0 + 2).owned == CHECKS


def test_a_node_silent_for_ten_leases_is_forgotten(engine):
    run(engine, "a", T0)
    run(engine, "b", T0 + 11 * LEASE)
    with engine.connect() as conn:
        assert conn.execute(sa.select(nodes.c.node_id)).scalars().all() == ["b"]


def test_leases_hold_until_their_end_by_the_nodes_clock():
    leases = ownership.Leases()
    key = ("web", "web-1", "http")
    assert not leases.owns(key, T0)
    leases.update(Round(frozenset({key}), 1, 1), T0, LEASE)
    assert leases.owns(key, T0 + LEASE - 0.01)
    assert not leases.owns(key, T0 + LEASE)
    assert not leases.owns(("web", "web-2", "http"), T0)
