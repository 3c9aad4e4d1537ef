"""The IXFR journal: versions as differences, condensed, bounded, never two contents for
one serial."""

from __future__ import annotations

import pytest

from srvdns.nameserver.journal import Delta, Journal, Recorded, serial_gt


def apply(contents: frozenset[str], delta: Delta[str]) -> frozenset[str]:
    """What a secondary does with an IXFR: delete, then add (RFC 1995 §4)."""
    assert delta.deleted <= contents, "deletes only what it holds"
    assert not (delta.added & (contents - delta.deleted)), "adds only what it lacks"
    return (contents - delta.deleted) | delta.added


@pytest.mark.parametrize(
    ("a", "b", "greater"),
    [
        (2, 1, True),
        (1, 2, False),
        (1, 1, False),
        (0, 2**32 - 1, True),  # wrapped around
        (2**31 + 5, 5, False),  # undefined in RFC 1982; never "greater"
        (2**31 + 4, 5, True),
    ],
)
def test_serial_arithmetic(a: int, b: int, greater: bool) -> None:
    assert serial_gt(a, b) is greater


def test_a_client_gets_what_changed_since_its_serial_condensed() -> None:
    journal: Journal[str] = Journal()
    versions = {
        10: frozenset({"a", "b"}),
        11: frozenset({"a", "b", "c"}),
        12: frozenset({"a", "c"}),
        13: frozenset({"a", "c", "b2"}),
        14: frozenset({"a", "b", "b2"}),
    }
    for serial, contents in versions.items():
        assert journal.record(serial, contents) is Recorded.NEW
    for serial, contents in versions.items():
        delta = journal.changes_since(serial)
        assert delta is not None
        assert (delta.old, delta.new) == (serial, 14)
        assert apply(contents, delta) == versions[14]
    assert journal.changes_since(10) == Delta(10, 14, frozenset(), frozenset({"b2"}))


def test_a_current_or_newer_client_gets_an_empty_delta_an_unknown_one_none() -> None:
    journal: Journal[str] = Journal()
    assert journal.changes_since(5) is None
    journal.record(5, {"a"})
    journal.record(7, {"b"})
    assert journal.changes_since(7) == Delta(7, 7, frozenset(), frozenset())
    assert journal.changes_since(9) == Delta(7, 7, frozenset(), frozenset())
    assert journal.changes_since(6) is None  # never a version here
    assert journal.changes_since(4) is None


def test_the_same_serial_with_other_contents_is_refused() -> None:
    journal: Journal[str] = Journal()
    journal.record(3, {"a"})
    assert journal.record(3, {"a"}) is Recorded.SAME
    assert journal.record(3, {"a", "b"}) is Recorded.CONFLICT
    assert journal.records == frozenset({"a"})
    assert journal.serial == 3


def test_a_serial_going_back_drops_the_history() -> None:
    journal: Journal[str] = Journal()
    journal.record(3, {"a"})
    journal.record(4, {"b"})
    assert journal.record(2, {"c"}) is Recorded.RESTARTED
    assert journal.deltas == ()
    assert journal.changes_since(1) is None
    assert journal.changes_since(2) == Delta(2, 2, frozenset(), frozenset())
    # a secondary at 3 or 4 now looks ahead and keeps what it has (RFC 1995 §2): why
    # the serial must never go back, and srvdns's never does
    assert journal.changes_since(4) == Delta(2, 2, frozenset(), frozenset())


def test_serials_wrap_around() -> None:
    journal: Journal[str] = Journal()
    journal.record(2**32 - 1, {"a"})
    assert journal.record(2**32 + 1, {"b"}) is Recorded.NEW  # serial 1
    delta = journal.changes_since(2**32 - 1)
    assert delta == Delta(2**32 - 1, 1, frozenset({"a"}), frozenset({"b"}))


def test_the_journal_is_bounded_in_changes_and_records() -> None:
    journal: Journal[int] = Journal(max_deltas=3, max_records=1000)
    for serial in range(1, 10):
        journal.record(serial, {serial})
    assert [d.old for d in journal.deltas] == [6, 7, 8]
    assert journal.changes_since(5) is None
    assert journal.changes_since(6) is not None
    big: Journal[int] = Journal(max_deltas=100, max_records=10)
    big.record(1, set())
    big.record(2, set(range(4)))  # 4 records
    big.record(3, set(range(8)))  # 4 more
    big.record(4, set(range(12)))  # 4 more: 12 > 10, the oldest change goes
    assert [d.old for d in big.deltas] == [2, 3]
    assert big.changes_since(1) is None
