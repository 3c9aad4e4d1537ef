"""How long a registration and a deregistration take to reach NSD and Knot secondaries.

    python bench/secondary_convergence.py [--rounds 40] [--instances 200]

Starts ``srvdns serve`` as a hidden primary with ``--instances`` registered instances
(10 per service, so transfers carry a real zone), NSD and Knot as its secondaries on
loopback, and waits until both serve the zone.  Then ``--rounds`` times: registers a
new instance of a new service through the API and, from the moment the API
acknowledged it, polls each secondary every 2 ms over UDP until it answers the
service's SRV; then deregisters it and polls until each answers NXDOMAIN.  The path
measured is commit -> NOTIFY (coalescing delay included) -> SOA query -> IXFR ->
secondary serving.  Prints p50/p99/max per secondary and change.  Every round is
bounded by a 10 s timeout.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
from pathlib import Path

import dns.message
import dns.query
import dns.rcode
import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from conformance.referees import Referee
from e2e.harness import start, write_config
from xfr.secondaries import enable_notify, launch_secondary, notify_line, wait_for_serial

ZONE = "service.local"
TIMEOUT = 10.0


def state(secondary: Referee, qname: str) -> str:
    query = dns.message.make_query(qname, "SRV")
    try:
        reply = dns.query.udp(query, secondary.host, port=secondary.port, timeout=0.5)
    except Exception:
        return "timeout"
    if reply.rcode() == dns.rcode.NOERROR and reply.answer:
        return "present"
    return dns.rcode.to_text(reply.rcode())


def wait_each(secondaries: list[Referee], qname: str, want: str, since: float) -> list[float]:
    """Seconds from ``since`` until each secondary shows ``want`` (polled in parallel)."""
    found = [float("nan")] * len(secondaries)

    def poll(n: int) -> None:
        deadline = since + TIMEOUT
        while time.perf_counter() < deadline:
            if state(secondaries[n], qname) == want:
                found[n] = time.perf_counter() - since
                return
            time.sleep(0.002)

    threads = [threading.Thread(target=poll, args=(n,)) for n in range(len(secondaries))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return found


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=40)
    parser.add_argument("--instances", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        body = f"""\
            [[zone]]
            name = "{ZONE}"
            ttl = 5
            transfer_to = ["127.0.0.1"]
            """
        primary = start(write_config(directory, body))
        secondaries: list[Referee] = []
        try:
            with httpx.Client(base_url=primary.api, timeout=30) as http:
                for i in range(args.instances):
                    http.put(
                        f"/v1/services/svc{i // 10}/instances/i{i}",
                        json={"address": f"10.1.{i // 250}.{i % 250}", "port": 8000 + i % 100},
                    ).raise_for_status()
                serial = int(primary.query(ZONE, "SOA").answer[0][0].serial)
                for kind in ("nsd", "knot"):
                    secondaries.append(
                        launch_secondary(kind, directory, ZONE, primary.dns[0], serial, None, 300)
                    )
                enable_notify(primary, notify_line(secondaries))
                serial = int(primary.query(ZONE, "SOA").answer[0][0].serial)
                for secondary in secondaries:
                    wait_for_serial(secondary, ZONE, serial, 60)
                results: dict[tuple[str, str], list[float]] = {}
                for n in range(args.rounds):
                    service = f"conv{n}"
                    qname = f"{service}.{ZONE}."
                    http.put(
                        f"/v1/services/{service}/instances/c1",
                        json={"address": "10.9.9.9", "port": 9999},
                    ).raise_for_status()
                    since = time.perf_counter()
                    for secondary, took in zip(
                        secondaries, wait_each(secondaries, qname, "present", since), strict=True
                    ):
                        results.setdefault((secondary.name, "registration"), []).append(took)
                    http.delete(f"/v1/services/{service}/instances/c1").raise_for_status()
                    since = time.perf_counter()
                    for secondary, took in zip(
                        secondaries, wait_each(secondaries, qname, "NXDOMAIN", since), strict=True
                    ):
                        results.setdefault((secondary.name, "deregistration"), []).append(took)
                    time.sleep(0.2)
            print(
                f"{args.rounds} rounds, zone of {args.instances} instances "
                f"(NOTIFY delay 50 ms, rounds at least 250 ms apart)"
            )
            print(f"{'secondary':<6} {'change':<15} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8} lost")
            for (name, change), values in results.items():
                ok = [v * 1000 for v in values if v == v]
                lost = len(values) - len(ok)
                if not ok:
                    print(f"{name:<6} {change:<15} {'-':>8} {'-':>8} {'-':>8} {lost}")
                    continue
                print(
                    f"{name:<6} {change:<15} {percentile(ok, 0.5):8.1f} "
                    f"{percentile(ok, 0.99):8.1f} {max(ok):8.1f} {lost}"
                )
        finally:
            for secondary in secondaries:
                secondary.stop()
            primary.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
