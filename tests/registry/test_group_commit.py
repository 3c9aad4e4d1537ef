"""Group commit (``Repository.batch``): each write undoes only itself when it fails, and
the batch stamps its changed services and moves the index once, before its commit."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from registry.test_repository import api, http_check

from srvdns.errors import ConflictError, NotFoundError
from srvdns.model import Status
from srvdns.registry import repository
from srvdns.registry.repository import LeaseRenewal, Repository
from srvdns.registry.tables import service_changes

TWICE = api("web", "b", checks=(http_check("x"), http_check("x")))
"""A registration whose second check insert fails, after its instance row went in."""


def counters(repo: Repository) -> tuple[int, int]:
    """(change_seq, index)."""
    with repo.engine.connect() as conn:
        return repository.read_change_seq(conn)


def stamps(repo: Repository) -> dict[str, int]:
    with repo.engine.connect() as conn:
        return {row.name: row.change_seq for row in conn.execute(sa.select(service_changes))}


def ids(repo: Repository) -> list[tuple[str, str]]:
    return [(i.service, i.id) for s in repo.load_services() for i in s.instances]


def test_a_write_failing_half_way_undoes_only_itself(repo: Repository) -> None:
    with repo.batch(writes=1):
        repo.upsert_instance(api("old", "x"))
    seq, index = counters(repo)
    with repo.batch(writes=4):
        first = repo.upsert_instance(api("web", "a"))
        with pytest.raises(ConflictError):
            repo.upsert_instance(TWICE)
        with pytest.raises(NotFoundError):
            repo.delete_instance("nowhere", "z")
        last = repo.upsert_instance(api("db", "c"))
    assert ids(repo) == [("db", "c"), ("old", "x"), ("web", "a")]
    assert first.index == last.index == index + 1  # the writes of a batch share one index
    assert counters(repo) == (seq + 1, index + 1)  # one bump of each for the whole batch
    assert stamps(repo) == {"old": seq, "web": seq + 1, "db": seq + 1}


def test_a_batch_whose_writes_all_fail_changes_no_counter(repo: Repository) -> None:
    with repo.batch(writes=1):
        repo.upsert_instance(api("web", "a"))
    before = counters(repo), stamps(repo)
    with repo.batch(writes=2):
        with pytest.raises(ConflictError):
            repo.upsert_instance(TWICE)
        with pytest.raises(NotFoundError):
            repo.delete_instance("web", "nope")
    assert (counters(repo), stamps(repo)) == before
    assert ids(repo) == [("web", "a")]


def test_renewals_alone_stamp_their_services_but_keep_the_index(repo: Repository) -> None:
    with repo.batch(writes=2):
        repo.upsert_instance(api("web", "a", ttl=30.0))
        repo.upsert_instance(api("api", "b", ttl=30.0))
    seq, index = counters(repo)
    renewal = LeaseRenewal("web", "a", 1_700_000_100.0, "ttl", Status.PASSING, "", 1, 0)
    with repo.batch([renewal], writes=0):
        pass
    assert counters(repo) == (seq + 1, index)
    assert stamps(repo) == {"web": seq + 1, "api": seq}
    with repo.batch([renewal], writes=1):  # with a write of another service: one stamp
        repo.upsert_instance(api("db", "c"))
    assert counters(repo) == (seq + 2, index + 1)
    assert stamps(repo) == {"web": seq + 2, "api": seq, "db": seq + 2}


def test_a_write_outside_any_batch_stamps_itself(repo: Repository) -> None:
    seq, index = counters(repo)
    repo.upsert_instance(api("web", "a"))
    repo.upsert_instance(api("web", "b"))
    assert counters(repo) == (seq + 2, index + 2)
    assert stamps(repo) == {"web": seq + 2}


def test_lone_writes_move_the_counters_as_a_group_commit_does(repo: Repository) -> None:
    with repo.batch(writes=1):
        repo.upsert_instance(api("web", "a"))
    seq, index = counters(repo)
    with repo.batch(writes=1):  # a replacement
        replaced = repo.upsert_instance(api("web", "a", port=9090))
    assert replaced.index == index + 1
    assert counters(repo) == (seq + 1, index + 1)
    assert stamps(repo) == {"web": seq + 1}
    with repo.batch(writes=1):  # a write that moves the index and names no service
        moved = repo.bump_index()
    assert moved.index == index + 2
    assert counters(repo) == (seq + 1, index + 2)
    assert stamps(repo) == {"web": seq + 1}
    with repo.batch(writes=1):  # a write that reads the index and moves nothing
        kept = repo.save_counters([])
    assert kept.index == index + 2
    assert counters(repo) == (seq + 1, index + 2)


def test_a_failed_lone_write_moves_no_counter(repo: Repository) -> None:
    with repo.batch(writes=1):
        repo.upsert_instance(api("web", "a"))
    before = counters(repo), stamps(repo)
    with repo.batch(writes=1), pytest.raises(ConflictError):
        repo.upsert_instance(TWICE)  # fails after its instance row went in
    assert (counters(repo), stamps(repo)) == before
    assert ids(repo) == [("web", "a")]


def test_a_lone_write_failing_after_it_moved_the_index_moves_no_counter(
    repo: Repository,
) -> None:
    if repo.engine.dialect.name != "sqlite":
        pytest.skip("a lone write runs without a savepoint on SQLite only")
    with repo.batch(writes=1):
        repo.upsert_instance(api("web", "a"))
    before = counters(repo), stamps(repo)

    def bump_then_fail(conn: sa.Connection) -> repository.Change:
        repository.bump_index(conn)
        raise ConflictError("refused after the bump")

    with repo.batch(writes=1), pytest.raises(ConflictError):
        repo._write("fail", bump_then_fail)
    assert (counters(repo), stamps(repo)) == before
