"""Nothing the API acknowledged is lost when srvdns is killed with SIGKILL mid-write.

A short run of ``e2e.crash`` (``bench/crash_safety.py`` runs it for longer).
"""

from __future__ import annotations

from pathlib import Path

from e2e import crash


def test_acknowledged_writes_survive_sigkill(tmp_path: Path) -> None:
    """Three kills with the default durability ("process": what SIGKILL tests);
    ``bench/crash_safety.py --durability power`` runs the other setting."""
    tally = crash.run(tmp_path, rounds=3, kill_after=(0.5, 1.5))
    assert tally.rounds == 3
    assert tally.writes > 0
    assert tally.problems == [], "\n".join(tally.problems)
    assert (tally.lost, tally.half_done, tally.unexpected) == (0, 0, 0)
    assert tally.integrity_ok == tally.rounds


def test_the_check_sees_a_lost_write_a_half_done_one_and_a_stray_one(launch) -> None:
    """The verification itself: each kind of damage is counted, so the test above can fail."""
    server = launch()
    lost = crash.Slot("crash0", "lost", acked=3)
    half = crash.Slot("crash0", "half", acked=1)
    whole = crash.Slot("crash1", "whole", acked=None, in_flight=(2,))
    with server.http() as http:
        mixed = {**crash.body(1, 0), "port": crash.body(2, 0)["port"]}
        assert http.put("/v1/services/crash0/instances/half", json=mixed).is_success
        assert http.put("/v1/services/crash1/instances/whole", json=crash.body(2, 0)).is_success
        assert http.put("/v1/services/crash2/instances/stray", json=crash.body(1, 0)).is_success
    tally = crash.Tally()
    crash.verify(server, [[lost, half, whole]], tally)
    assert (tally.lost, tally.half_done, tally.in_flight) == (1, 1, 1)
    assert tally.unexpected >= 1  # the stray instance (and DNS disagreeing with the log)
    assert whole.acked == 2
    assert whole.in_flight is None
