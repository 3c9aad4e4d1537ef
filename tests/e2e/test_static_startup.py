"""A large static set through a real srvdns: every instance answers from the first query
after a first start (bulk insert, catalog built from what was written), after a restart
on the same config (static sync skipped, registry read back in bulk) and after a restart
on an edited config."""

from __future__ import annotations

import dns.rcode
from e2e.harness import SrvdnsProcess, write_config

SERVICES = 120  # above the repository's bulk threshold (64)


def static_config(edited: bool = False) -> str:
    blocks = ['[[zone]]\nname = "service.local"\nttl = 5\n']
    for s in range(SERVICES):
        if edited and s == 7:
            continue  # a service the edited config drops
        blocks.append(f'[[zone.service]]\nname = "svc-{s}"\n')
        for i in range(3):
            port = 9000 + i if edited and s == 3 and i == 0 else 8000 + i
            tags = '["blue"]' if i == 1 else "[]"
            meta = '{ rack = "r1" }' if i == 2 else "{}"
            address = f'"2001:DB8::{s:x}:{i + 1}"' if s % 10 == 9 else f'"10.1.{s}.{i + 1}"'
            blocks.append(
                "[[zone.service.instances]]\n"
                f'id = "svc-{s}-{i}"\naddress = {address}\nport = {port}\n'
                f"tags = {tags}\nmeta = {meta}\n"
            )
    return "".join(blocks)


def srv(proc: SrvdnsProcess, name: str) -> list[str]:
    reply = proc.query(f"{name}.service.local", "SRV", tcp=True)
    assert reply.rcode() == dns.rcode.NOERROR, name
    return sorted(str(r) for rrset in reply.answer for r in rrset)


def expected(s: int, edited: bool = False) -> list[str]:
    ports = [9000 if edited and s == 3 else 8000, 8001, 8002]
    return sorted(
        f"0 1 {port} svc-{s}-{i}.instance.svc-{s}.service.local." for i, port in enumerate(ports)
    )


def check_all(proc: SrvdnsProcess, edited: bool = False) -> None:
    for s in range(SERVICES):
        if edited and s == 7:
            assert proc.query(f"svc-{s}.service.local", "SRV").rcode() == dns.rcode.NXDOMAIN
            continue
        assert srv(proc, f"svc-{s}") == expected(s, edited)
    tagged = proc.query("blue.svc-5.service.local", "A")
    assert [r.address for rrset in tagged.answer for r in rrset] == ["10.1.5.2"]
    v6 = proc.query("svc-9.service.local", "AAAA")
    assert sorted(r.address for rrset in v6.answer for r in rrset) == [
        "2001:db8::9:1",
        "2001:db8::9:2",
        "2001:db8::9:3",
    ]
    txt = proc.query("svc-4-2.instance.svc-4.service.local", "TXT")
    assert [s for rrset in txt.answer for r in rrset for s in r.strings] == [b"rack=r1"]


def details(proc: SrvdnsProcess) -> list[dict[str, object]]:
    """What the API says of a few services: every field, times included."""
    with proc.http() as http:
        return [http.get(f"/v1/services/svc-{s}").json() for s in (0, 4, 9, SERVICES - 1)]


def test_static_set_answers_from_the_first_query(launch, tmp_path):  # type: ignore[no-untyped-def]
    path = write_config(tmp_path, static_config())
    first = launch(config=path)
    check_all(first)
    stored = details(first)
    assert first.stop() == 0
    again = launch(config=path)  # same config: nothing synced, everything read back
    check_all(again)
    assert details(again) == stored
    assert again.stop() == 0
    path.write_text(path.read_text().replace(static_config(), static_config(edited=True)))
    edited = launch(config=path)
    check_all(edited, edited=True)
    # the services the edit left alone keep every field, times included
    assert [d["instances"] for d in details(edited)] == [d["instances"] for d in stored]
