"""srvdns.catalog: patching single instances gives what a full build gives."""

from __future__ import annotations

from dataclasses import replace

import pytest

from srvdns.catalog import Catalog, ServiceView
from srvdns.model import Instance, Service


def inst(service: str, id: str, port: int = 80) -> Instance:
    return Instance(service=service, id=id, address="10.0.0.1", port=port)


def same(view: ServiceView, built: ServiceView) -> None:
    assert view.instances == built.instances
    assert dict(view.targets) == dict(built.targets)
    assert dict(view.target_of) == dict(built.target_of)


BASE = Catalog.build(
    [
        # sorted by id, as the registry reads them
        Service("web", (inst("web", "B_1"), inst("web", "a"), inst("web", "c"))),
        Service("db", (inst("db", "x"),)),
    ],
    index=7,
)


@pytest.mark.parametrize(
    ("upserts", "removals", "expected"),
    [
        ([inst("web", "B_1", port=9)], [], {"web": ["B_1", "a", "c"], "db": ["x"]}),
        ([inst("web", "b")], [], {"web": ["B_1", "a", "b", "c"], "db": ["x"]}),
        ([], [("web", "a")], {"web": ["B_1", "c"], "db": ["x"]}),
        ([], [("db", "x")], {"web": ["B_1", "a", "c"]}),
        (
            [inst("new", "n")],
            [("web", "zz")],
            {"web": ["B_1", "a", "c"], "db": ["x"], "new": ["n"]},
        ),
    ],
)
def test_with_instances_equals_a_full_build(upserts, removals, expected):
    patched, changed = BASE.with_instances(upserts, removals, index=8)
    assert patched.index == 8
    assert patched.generation == BASE.generation + 1
    assert {name: [i.id for i in v.instances] for name, v in patched.services.items()} == expected
    for name, view in patched.services.items():
        same(view, ServiceView.build(Service(name, view.instances)))
    assert {s.name for s in changed} == {i.service for i in upserts} | {n for n, _ in removals}
    for service in changed:
        found = patched.get_service(service.name)
        assert service.instances == (() if found is None else found.instances)


def test_a_replacement_keeps_the_other_views_and_labels():
    renewed = replace(BASE.services["web"].targets["a"], last_heartbeat=5.0)
    patched, _ = BASE.with_instances([renewed], index=7)
    assert patched.services["db"] is BASE.services["db"]
    assert patched.services["web"].target_of is BASE.services["web"].target_of
    assert patched.services["web"].targets["a"] is renewed
    assert patched.index == 7  # never below the current index


@pytest.mark.parametrize("order", [["a", "b", "c"], ["c", "a", "b"], ["b", "c", "a"]])
def test_a_replacement_keeps_the_order_whatever_it_is(order):
    view = ServiceView.build(Service("web", tuple(inst("web", i) for i in order)))
    upserts = {"a": inst("web", "a", port=1), "c": inst("web", "c", port=3)}
    patched = view.updated(upserts, [])
    assert [i.id for i in patched.instances] == order
    assert [i.port for i in patched.instances] == [
        upserts[i].port if i in upserts else 80 for i in order
    ]
    assert patched.targets[view.target_of["a"]].port == 1


@pytest.mark.parametrize("order", [["a", "c", "e"], ["e", "a", "c"]])
def test_an_addition_sorts_by_id_as_a_full_build(order):
    view = ServiceView.build(Service("web", tuple(inst("web", i) for i in order)))
    upserts = {"d": inst("web", "d"), "a": inst("web", "a", port=1), "0": inst("web", "0")}
    patched = view.updated(upserts, [])
    assert [i.id for i in patched.instances] == ["0", "a", "c", "d", "e"]
    assert patched.instances[1].port == 1
    assert set(patched.target_of) == {"0", "a", "c", "d", "e"}


def test_a_patch_names_the_services_it_replaced_since_an_older_snapshot() -> None:
    one, _ = BASE.with_instances([inst("web", "a", port=9)], index=8)
    two = one.patched([Service("db", ())], index=9)
    three, _ = two.with_instances([], [], index=10)  # the index alone
    assert one.changed_since(BASE.serial) == {"web"}
    assert two.changed_since(BASE.serial) == {"web", "db"}
    assert two.changed_since(one.serial) == {"db"}
    assert three.changed_since(two.serial) == frozenset()
    assert three.changed_since(three.serial) == frozenset()
    assert BASE.changed_since(one.serial) is None  # newer, not older
    rebuilt = Catalog.build([Service("web", (inst("web", "a"),))], index=11)
    assert rebuilt.changed_since(three.serial) is None  # a whole new snapshot


def test_the_lineage_reaches_back_a_bounded_number_of_patches() -> None:
    from srvdns.catalog import LINEAGE

    snapshots = [BASE]
    for n in range(LINEAGE + 1):
        snapshots.append(snapshots[-1].with_instances([inst("db", f"n{n}")], index=8 + n)[0])
    last = snapshots[-1]
    assert last.changed_since(snapshots[1].serial) == {"db"}
    assert last.changed_since(snapshots[0].serial) is None
    assert len(last.lineage) == LINEAGE


def test_snapshots_compare_by_content_not_by_serial() -> None:
    assert Catalog.build([], index=1) == Catalog.build([], index=1)
    assert Catalog.build([], index=1).serial != Catalog.build([], index=1).serial


@pytest.mark.parametrize(
    "instance",
    [inst("web", "B_1", port=9), inst("web", "b"), inst("new", "n"), inst("db", "x", port=1)],
    ids=["replaced", "added", "new service", "other service"],
)
def test_one_instance_written_patches_as_several_do(instance: Instance) -> None:
    """A write of one instance (a tuple of one, as the registry passes it) takes a
    shorter way; it must give what the general way (a list) gives."""
    short, short_changed = BASE.with_instances((instance,), (), index=8)
    general, general_changed = BASE.with_instances([instance], [], index=8)
    assert short == general
    assert short_changed == general_changed
    assert short.changed_since(BASE.serial) == general.changed_since(BASE.serial)
    for name, view in short.services.items():
        same(view, general.services[name])
        if name != instance.service:
            assert view is BASE.services[name]
