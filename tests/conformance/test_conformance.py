"""srvdns answers like NSD and Knot serving the zone srvdns exports, but for the short list
of differences that are right for srvdns (``compare.ALLOWED``, each with its reason).

Truncation, as observed: the three set TC on exactly the same UDP questions (ANY aside,
see ``any-rfc8482``).  When the answer RRset does not fit, NSD and Knot, like srvdns,
send TC=1 with all three sections empty: none of them sends a partial RRset.  When only
the additional section does not fit, all three leave records out without TC, filling what
room there is; NSD spends it on its apex NS and their addresses first (``additional-fit``).
"""

from __future__ import annotations

from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest
from conformance.compare import ALLOWED, Context, Transport, ask, explain
from conformance.dataset import Question, corpus
from conformance.referees import missing_binaries
from conformance.world import World

pytestmark = pytest.mark.e2e

Outcome = tuple[str, list[str], list[str]]
"""(referee, allowed differences that applied, unexplained differences)."""


def _compare(world: World, question: Question, transport_name: str) -> list[Outcome]:
    transport = Transport(transport_name)
    ours = ask(world.srvdns.host, world.srvdns.port, question, transport)
    out = []
    for name, referee in world.referees.items():
        theirs = ask(referee.host, referee.port, question, transport)
        used, problems = explain(Context(question, transport, name, world.zones), ours, theirs)
        out.append((name, used, problems))
    return out


def test_nsd_and_knot_are_installed() -> None:
    assert not missing_binaries(), (
        f"missing: {', '.join(missing_binaries())}; apt-get install nsd knot knot-dnsutils"
    )


def test_srvdns_answers_like_nsd_and_knot(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    questions = corpus()
    assert len(questions) >= 300
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(lambda item: _compare(world, *item), questions))
    counts: Counter[tuple[str, str]] = Counter()
    failures = []
    for (question, transport), outcomes in zip(questions, results, strict=True):
        for referee, used, problems in outcomes:
            counts[(referee, "compared")] += 1
            counts[(referee, "identical" if not used else "explained")] += 1
            counts.update((referee, name) for name in used)
            if problems:
                failures.append(
                    f"{question.qname} {question.qtype} over {transport} vs {referee}: "
                    + "; ".join(problems)
                )
    with capsys.disabled():
        print(f"\nconformance: {len(questions)} questions, each asked of srvdns, NSD and Knot")
        for referee in world.referees:
            row = ", ".join(
                f"{name} {n}" for (r, name), n in sorted(counts.items()) if r == referee
            )
            print(f"  {referee}: {row}")
    assert not failures, f"{len(failures)} unexplained differences:\n" + "\n".join(failures[:60])
    unused = [
        f"{allowed.name} ({referee})"
        for allowed in ALLOWED
        for referee in sorted(allowed.referees)
        if not counts[(referee, allowed.name)]
    ]
    assert not unused, f"allowed differences that no longer occur, drop them: {unused}"
