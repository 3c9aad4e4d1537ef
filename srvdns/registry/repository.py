"""The only SQL in srvdns: reads and writes of the registry tables, one transaction each.

The functions take a ``Connection`` inside a transaction and compose; ``Repository``
runs each of them as one transaction of its own, commits, and turns database failures
into ``StoreUnavailableError`` (the transaction rolled back, nothing partial stored).
Every write that may change a DNS answer or a check's status bumps
``registry_state.index`` in the same transaction (it is the SOA serial and the
X-Consul-Index that blocking queries wait on).
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any, TypeAlias, TypeVar

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection, Engine, Row

from srvdns.errors import ConflictError, NotFoundError, StoreUnavailableError
from srvdns.model import Check, CheckKind, CheckSpec, Instance, Service, Source, Status, worst
from srvdns.registry import bulk, driver
from srvdns.registry.driver import DriverStatement
from srvdns.registry.engine import READ_ONLY
from srvdns.registry.tables import (
    STATE_ROW_ID,
    checks,
    instances,
    registry_state,
    service_changes,
    services,
    static_sync,
)
from srvdns.registry.trouble import DatabaseFileError

T = TypeVar("T")
_Row: TypeAlias = Row[*tuple[Any, ...]]

_INDEX = registry_state.c["index"]  # not .c.index: that is ColumnCollection.index()
_CHANGE_SEQ = registry_state.c.change_seq

_ROW_COLUMNS = (
    services.c.name.label("service"),
    instances.c.id.label("pk"),
    instances.c.instance_id,
    instances.c.address,
    instances.c.port,
    instances.c.weight,
    instances.c.warning_weight,
    instances.c.priority,
    instances.c.tags,
    instances.c.meta,
    instances.c.ttl,
    instances.c.last_heartbeat,
    instances.c.registered_at,
    instances.c.status,
    instances.c.source,
)

_CHECK_COLUMNS = (
    checks.c.id.label("check_pk"),
    checks.c.instance_pk,
    checks.c.check_id,
    checks.c.kind,
    checks.c.definition,
    checks.c.status,
    checks.c.output,
    checks.c.last_change,
    checks.c.successes,
    checks.c.failures,
)

_JOINED = services.join(instances, instances.c.service_id == services.c.id)
_CHECKS_JOINED = _JOINED.join(checks, checks.c.instance_pk == instances.c.id)

InstanceKey: TypeAlias = tuple[str, str]
"""(service, instance id)."""


@dataclass(frozen=True, slots=True)
class Change:
    """What a committed write did: the services it touched, as they now are, and the index.

    A service in ``services`` with no instances has been deleted.  ``keys`` names the
    instances whose definition or stored health the write set from outside the health
    loop (None: any instance of ``services``); ``health_only`` marks the health loop's
    own writes of check results.
    """

    services: tuple[Service, ...]
    index: int
    instance: Instance | None = None
    keys: tuple[InstanceKey, ...] | None = None
    health_only: bool = False
    upserts: tuple[Instance, ...] = ()
    """Instances written as they are now stored, for the catalog to patch in itself (a
    write that names them here does not read its services back; ``services`` is then
    filled in by the registry from the patched catalog)."""
    removals: tuple[InstanceKey, ...] = ()
    """Instances deleted, likewise."""

    def with_services(self, services: tuple[Service, ...]) -> Change:
        """This change with ``services`` (``dataclasses.replace`` costs a registration's
        publishing more than this does)."""
        return Change(
            services,
            self.index,
            self.instance,
            self.keys,
            self.health_only,
            self.upserts,
            self.removals,
        )


@dataclass(frozen=True, slots=True)
class LeaseRenewal:
    """A heartbeat acknowledged from memory, to be persisted with the next transaction.

    ``at`` is the new ``last_heartbeat``; the ttl check ``check_id`` keeps ``status`` and
    gets ``output`` and the counters.
    """

    service: str
    instance_id: str
    at: float
    check_id: str
    status: Status
    output: str
    successes: int
    failures: int


@dataclass(frozen=True, slots=True)
class CheckUpdate:
    """The health loop's new state of one check of one instance.

    It applies only while the stored check still has the same definition (``check.spec``):
    a re-registration with another definition wins over a result of the old one.
    """

    service: str
    instance_id: str
    check: Check


# -- checks as rows ---------------------------------------------------------------------


def spec_definition(spec: CheckSpec) -> dict[str, Any]:
    """The JSON the ``checks.definition`` column holds for ``spec`` (not its id or kind)."""
    return {
        "interval": spec.interval,
        "timeout": spec.timeout,
        "target": spec.target,
        "method": spec.method,
        "headers": [list(pair) for pair in spec.headers],
        "tls_skip_verify": spec.tls_skip_verify,
        "ttl": spec.ttl,
        "success_before_passing": spec.success_before_passing,
        "failures_before_critical": spec.failures_before_critical,
        "deregister_critical_after": spec.deregister_critical_after,
        "initial_status": spec.initial_status.value,
        **({"name": spec.name} if spec.name else {}),
        **({"notes": spec.notes} if spec.notes else {}),
    }


def _spec_of(check_id: str, kind: str, definition: dict[str, Any]) -> CheckSpec:
    ttl = definition.get("ttl")
    dca = definition.get("deregister_critical_after")
    return CheckSpec(
        id=check_id,
        kind=CheckKind(kind),
        interval=float(definition["interval"]),
        timeout=float(definition["timeout"]),
        target=str(definition.get("target", "")),
        method=str(definition.get("method", "GET")),
        headers=tuple((str(k), str(v)) for k, v in definition.get("headers") or ()),
        tls_skip_verify=bool(definition.get("tls_skip_verify", False)),
        ttl=None if ttl is None else float(ttl),
        success_before_passing=int(definition.get("success_before_passing", 1)),
        failures_before_critical=int(definition.get("failures_before_critical", 1)),
        deregister_critical_after=None if dca is None else float(dca),
        initial_status=Status(definition.get("initial_status", Status.CRITICAL.value)),
        name=str(definition.get("name", "")),
        notes=str(definition.get("notes", "")),
    )


def _to_check(row: _Row) -> Check:
    return Check(
        spec=_spec_of(row.check_id, row.kind, row.definition or {}),
        status=Status(row.status),
        output=row.output,
        last_change=row.last_change,
        successes=row.successes,
        failures=row.failures,
    )


def _check_values(check: Check) -> dict[str, Any]:
    return {
        "check_id": check.spec.id,
        "kind": check.spec.kind.value,
        "definition": spec_definition(check.spec),
        "status": check.status.value,
        "output": check.output,
        "last_change": check.last_change,
        "successes": check.successes,
        "failures": check.failures,
    }


def initial_check(spec: CheckSpec, now: float) -> Check:
    """A new check, in its initial status since ``now``."""
    return Check(spec=spec, status=spec.initial_status, last_change=now)


# -- reads ------------------------------------------------------------------------------


def _to_instance(row: _Row, found: Sequence[Check] = ()) -> Instance:
    meta = row.meta or {}
    return Instance(
        service=row.service,
        id=row.instance_id,
        address=row.address,
        port=row.port,
        tags=tuple(row.tags or ()),
        meta=tuple(sorted((str(k), str(v)) for k, v in meta.items())),
        weight=row.weight,
        warning_weight=row.warning_weight,
        priority=row.priority,
        ttl=row.ttl,
        last_heartbeat=row.last_heartbeat,
        status=Status(row.status),
        source=Source(row.source),
        registered_at=row.registered_at,
        checks=tuple(found),
    )


def _checks_by_instance(conn: Connection, where: Any = None) -> dict[int, list[Check]]:
    query = sa.select(*_CHECK_COLUMNS).select_from(_CHECKS_JOINED)
    if where is not None:
        query = query.where(where)
    grouped: dict[int, list[Check]] = {}
    for row in conn.execute(query.order_by(checks.c.instance_pk, checks.c.check_id)):
        grouped.setdefault(row.instance_pk, []).append(_to_check(row))
    return grouped


def _group(rows: Iterable[_Row], found: dict[int, list[Check]]) -> list[Service]:
    grouped: dict[str, list[Instance]] = {}
    for row in rows:
        grouped.setdefault(row.service, []).append(_to_instance(row, found.get(row.pk, ())))
    return [Service(name=name, instances=tuple(items)) for name, items in grouped.items()]


def load_services(conn: Connection) -> list[Service]:
    """Every service that has instances, sorted by name, instances sorted by id."""
    query = (
        sa.select(*_ROW_COLUMNS)
        .select_from(_JOINED)
        .order_by(services.c.name, instances.c.instance_id)
    )
    # every row, at every start: plain tuples (bulk), not Row objects
    return bulk.instances_by_service(conn, bulk.select_rows(conn, query), _checks_by_instance(conn))


def get_service(conn: Connection, name: str) -> Service | None:
    """The service ``name`` with its instances sorted by id, or None when it has none."""
    query = (
        sa.select(*_ROW_COLUMNS)
        .select_from(_JOINED)
        .where(services.c.name == name)
        .order_by(instances.c.instance_id)
    )
    rows = conn.execute(query).all()
    if not rows:
        return None
    found = _group(rows, _checks_by_instance(conn, services.c.name == name))
    return found[0] if found else None


def find_service(conn: Connection, name: str) -> Service:
    """The service ``name``; raises NotFoundError."""
    service = get_service(conn, name)
    if service is None:
        raise NotFoundError(f"no service {name!r}")
    return service


def _current_service(conn: Connection, name: str) -> Service:
    return get_service(conn, name) or Service(name=name, instances=())


def _get_row(conn: Connection, service: str, instance_id: str) -> _Row | None:
    query = (
        sa.select(*_ROW_COLUMNS)
        .select_from(_JOINED)
        .where(services.c.name == service, instances.c.instance_id == instance_id)
    )
    return conn.execute(query).first()


def _find_row(conn: Connection, service: str, instance_id: str) -> _Row:
    row = _get_row(conn, service, instance_id)
    if row is None:
        if conn.execute(sa.select(services.c.id).where(services.c.name == service)).first():
            raise NotFoundError(f"service {service!r} has no instance {instance_id!r}")
        raise NotFoundError(f"no service {service!r}")
    return row


_CHECKS_OF = DriverStatement(
    sa.select(*_CHECK_COLUMNS).where(checks.c.instance_pk == sa.bindparam("b_pk"))
)


def _instance_checks(conn: Connection, instance_pk: int) -> dict[str, tuple[int, Check]]:
    rows = _CHECKS_OF.rows(conn, {"b_pk": instance_pk})
    return {row.check_id: (row.check_pk, _to_check(row)) for row in rows}


def _instance_of(service: Service, instance_id: str) -> Instance:
    """The instance ``instance_id`` of a service just read in this transaction (one read
    of the service gives both the catalog's copy and the write's result)."""
    for instance in service.instances:
        if instance.id == instance_id:
            return instance
    raise AssertionError(f"service {service.name!r} lost instance {instance_id!r} mid-write")


# The statements of the write path, built once: a statement built per call costs more
# in SQLAlchemy (construction, cache key) than SQLite takes to run it.
_READ_INDEX = sa.select(_INDEX).where(registry_state.c.id == STATE_ROW_ID)
_BUMP_INDEX = (
    registry_state.update().where(registry_state.c.id == STATE_ROW_ID).values({_INDEX: _INDEX + 1})
)
_SERVICE_PK = sa.select(services.c.id).where(services.c.name == sa.bindparam("b_name"))
_SERVICE_AND_INSTANCE = DriverStatement(
    sa.select(
        services.c.id.label("service_pk"),
        instances.c.id.label("instance_pk"),
        instances.c.source,
        sa.exists()
        .where(checks.c.instance_pk == instances.c.id)
        .correlate(instances)
        .label("has_checks"),
    )
    .select_from(
        services.outerjoin(
            instances,
            sa.and_(
                instances.c.service_id == services.c.id,
                instances.c.instance_id == sa.bindparam("b_instance_id"),
            ),
        )
    )
    .where(services.c.name == sa.bindparam("b_name"))
)
"""A service's primary key, its instance's row and whether that has checks (NULLs, and
false, when it has no such instance) in one statement: the first read of every
registration (an instance without checks, as most are, needs no read of them)."""
_INSERT_INSTANCE = DriverStatement(instances.insert())
_UPDATE_INSTANCE = DriverStatement(instances.update().where(instances.c.id == sa.bindparam("b_pk")))
_INSERT_CHECK = DriverStatement(checks.insert())
_UPDATE_CHECK = DriverStatement(checks.update().where(checks.c.id == sa.bindparam("b_pk")))


_BATCH_INDEX = "srvdns_batch_index"
"""``conn.info`` key inside ``Repository.batch``: [index at the start, 1 once bumped];
the index is None until a write asks for it in the batch of a lone write on SQLite."""
_BATCH_SEQ = "srvdns_batch_seq"
"""``conn.info`` key inside the batch of a lone write on SQLite whose write bumped the
index: the ``change_seq`` the same statement moved the counters to (see ``bump_index``)."""
_BATCH_NAMES = "srvdns_batch_names"
"""``conn.info`` key inside ``Repository.batch``: the services its committed writes
changed, stamped for the followers once, before the commit (``record_changes``)."""
_READ_INDEX_LOCKED = DriverStatement(_READ_INDEX.with_for_update())


def read_index(conn: Connection) -> int:
    """The registry's persistent change counter."""
    batched = conn.info.get(_BATCH_INDEX)
    if batched is not None:
        if batched[0] is None:  # the batch of a lone write: read when first asked
            batched[0] = _checked_index(_READ_INDEX_LOCKED.scalar(conn, {}))
        return int(batched[0] + batched[1])
    return _checked_index(conn.execute(_READ_INDEX).scalar())


def _checked_index(index: Any) -> int:
    """The index read from the state row (None: the row is missing)."""
    if index is None:
        raise StoreUnavailableError(
            "the registry database has no registry_state row; run `srvdns db upgrade`"
        )
    return int(index)


def read_change_seq(conn: Connection) -> tuple[int, int]:
    """The registry's ``(change_seq, index)``: what a change follower polls."""
    row = conn.execute(
        sa.select(_CHANGE_SEQ, _INDEX).where(registry_state.c.id == STATE_ROW_ID)
    ).first()
    if row is None:
        raise StoreUnavailableError(
            "the registry database has no registry_state row; run `srvdns db upgrade`"
        )
    return int(row[0]), int(row[1])


def changed_since(conn: Connection, change_seq: int) -> list[str]:
    """The names of the services changed (or deleted) after ``change_seq``, sorted."""
    query = (
        sa.select(service_changes.c.name)
        .where(service_changes.c.change_seq > change_seq)
        .order_by(service_changes.c.name)
    )
    return list(conn.scalars(query))


def current_services(conn: Connection, names: Sequence[str]) -> tuple[Service, ...]:
    """Each named service as stored now; one with no instances stands for a deletion."""
    return _current_services(conn, names)


# -- writes -----------------------------------------------------------------------------


def _in_savepoint(conn: Connection, fn: Callable[[Connection], Change]) -> Change:
    """Run one write of a batch in a savepoint, so that its own failure undoes only it.

    When the database itself failed (SQLite rolls the whole transaction back on a full
    disk, say), rolling back to the savepoint fails too; the write's own error is the one
    that says why, so that is the one raised.
    """
    if conn.dialect.name == "sqlite" and conn.dialect.driver == "pysqlite":
        return _in_sqlite_savepoint(conn, fn)
    savepoint = conn.begin_nested()
    try:
        change = fn(conn)
        _record(conn, change)
    except BaseException:
        with contextlib.suppress(sa.exc.SQLAlchemyError):
            savepoint.rollback()
        raise
    savepoint.commit()
    return change


def _in_sqlite_savepoint(conn: Connection, fn: Callable[[Connection], Change]) -> Change:
    """``_in_savepoint`` on SQLite, with the savepoint statements sent to the driver
    directly: through SQLAlchemy's nested transactions they cost ~40 us a write, ~20 times
    what SQLite takes for them, on every write of a group commit.  Balanced (released or
    rolled back and released) before it returns, so SQLAlchemy's own transaction state
    never sees it."""
    raw: Any = conn.connection.driver_connection
    driver.execute(conn, "SAVEPOINT srvdns_write")
    try:
        change = fn(conn)
        _record(conn, change)
    except BaseException:
        with contextlib.suppress(sqlite3.Error):  # a closed or rolled back connection
            raw.execute("ROLLBACK TO SAVEPOINT srvdns_write")
            raw.execute("RELEASE SAVEPOINT srvdns_write")
        raise
    driver.execute(conn, "RELEASE SAVEPOINT srvdns_write")
    return change


class _Undone(Exception):
    """Raised inside ``Repository.batch`` to roll back the failed lone write's transaction."""


def _alone(conn: Connection, fn: Callable[[Connection], Change], failed: list[bool]) -> Change:
    """Run the one write of a batch straight in its transaction (see ``Repository.batch``);
    if it fails, ``failed[0]`` marks the transaction to be rolled back."""
    try:
        change = fn(conn)
        _record(conn, change)
    except BaseException:
        failed[0] = True
        raise
    return change


def _record(conn: Connection, change: Change) -> None:
    """Stamp the services ``change`` touched for the change followers (see follower.py)."""
    names = {service.name for service in change.services}
    names.update(instance.service for instance in change.upserts)
    names.update(service for service, _ in change.removals)
    if not names:
        return
    pending: set[str] | None = conn.info.get(_BATCH_NAMES)
    if pending is not None:  # inside ``Repository.batch``: recorded once, before the commit
        pending.update(names)
    else:
        record_changes(conn, names)


_NOTIFY_CHANGES = sa.text("SELECT pg_notify('srvdns_changes', '')")
"""PostgreSQL: tell every node's ``notify.ChangeListener`` that a change committed."""


_BUMP_CHANGE_SEQ = (
    registry_state.update()
    .where(registry_state.c.id == STATE_ROW_ID)
    .values({_CHANGE_SEQ: _CHANGE_SEQ + 1})
)
_BUMP_CHANGE_SEQ_RETURNING = _BUMP_CHANGE_SEQ.returning(_CHANGE_SEQ)
_BUMP_SEQ_AND_INDEX = (
    registry_state.update()
    .where(registry_state.c.id == STATE_ROW_ID)
    .values({_CHANGE_SEQ: _CHANGE_SEQ + 1, _INDEX: _INDEX + 1})
)
_BUMP_SEQ_ONLY = (_BUMP_CHANGE_SEQ, DriverStatement(_BUMP_CHANGE_SEQ_RETURNING))
_BUMP_BOTH = (_BUMP_SEQ_AND_INDEX, DriverStatement(_BUMP_SEQ_AND_INDEX.returning(_CHANGE_SEQ)))
_BUMP_BOTH_RETURNING_INDEX = DriverStatement(_BUMP_SEQ_AND_INDEX.returning(_CHANGE_SEQ, _INDEX))
_UNBUMP_CHANGE_SEQ = (
    registry_state.update()
    .where(registry_state.c.id == STATE_ROW_ID)
    .values({_CHANGE_SEQ: _CHANGE_SEQ - 1})
)
_STAMP_CHANGE = (
    service_changes.update()
    .where(service_changes.c.name == sa.bindparam("b_name"))
    .values(change_seq=sa.bindparam("b_seq"))
)
"""Built once: these run on every write, and building them costs more than running them."""


def record_changes(conn: Connection, names: Iterable[str], *, bump_index: bool = False) -> int:
    """Note in the current transaction that the services ``names`` changed: bump
    ``change_seq`` and stamp each name with it (inserting the names seen for the first
    time).  Returns the new ``change_seq``.  ``Repository`` calls this for every write
    whose ``Change`` names services (once per group commit for all of its writes), so
    followers miss none.  With ``bump_index`` the same statement moves ``index`` too.
    Two statements for the usual write: it is on every write's path."""
    seq = _bump_change_seq(conn, bump_index)
    if conn.dialect.name == "postgresql":  # wakes other nodes' followers at commit
        conn.execute(_NOTIFY_CHANGES)
    _stamp_changes(conn, names, seq)
    return seq


def _stamp_changes(conn: Connection, names: Iterable[str], seq: int) -> None:
    """Stamp each of ``names`` with ``seq`` in ``service_changes`` (see ``record_changes``)."""
    wanted = sorted(set(names))
    upsert = _stamp_upsert(conn.dialect.name)
    if upsert is not None and len(wanted) <= _MANY_SERVICES:
        upsert.run_many(conn, [{"name": name, "change_seq": seq} for name in wanted])
        return
    if len(wanted) <= _MANY_SERVICES:
        for name in wanted:
            stamped = conn.execute(_STAMP_CHANGE, {"b_name": name, "b_seq": seq})
            if not stamped.rowcount:
                conn.execute(service_changes.insert().values(name=name, change_seq=seq))
        return
    known: set[str] = set()
    for start in range(0, len(wanted), 500):  # bounded IN lists
        chunk = wanted[start : start + 500]
        known.update(
            conn.scalars(sa.select(service_changes.c.name).where(service_changes.c.name.in_(chunk)))
        )
    if known:
        conn.execute(
            service_changes.update()
            .where(service_changes.c.name == sa.bindparam("b_name"))
            .values(change_seq=seq),
            [{"b_name": name} for name in sorted(known)],
        )
    fresh = [(name, seq) for name in wanted if name not in known]
    bulk.insert_many(conn, service_changes, ("name", "change_seq"), fresh)


def _stamp_upsert(dialect: str) -> DriverStatement | None:
    """``INSERT ... ON CONFLICT (name) DO UPDATE`` of ``service_changes``: one statement
    (an executemany for several names) stamps known and new names alike; None where the
    database has no such upsert (the stamps are then an UPDATE, and an INSERT if needed)."""
    return _STAMP_UPSERTS.get(dialect)


def _build_stamp_upserts() -> dict[str, DriverStatement]:
    built: dict[str, DriverStatement] = {}
    for name, insert in (("sqlite", sqlite_insert), ("postgresql", postgresql_insert)):
        statement = insert(service_changes)
        built[name] = DriverStatement(
            statement.on_conflict_do_update(
                index_elements=[service_changes.c.name],
                set_={"change_seq": statement.excluded.change_seq},
            )
        )
    return built


_STAMP_UPSERTS = _build_stamp_upserts()


def _bump_change_seq(conn: Connection, bump_index: bool = False) -> int:
    """Increment ``change_seq`` (its row lock orders concurrent writers on PostgreSQL),
    and ``index`` too with ``bump_index``; the new ``change_seq``, read back by RETURNING
    where the database has it."""
    bump, returning = _BUMP_BOTH if bump_index else _BUMP_SEQ_ONLY
    if conn.dialect.update_returning:
        seq = returning.scalar(conn, {})
        if seq is None:
            raise StoreUnavailableError(
                "the registry database has no registry_state row; run `srvdns db upgrade`"
            )
        return int(seq)
    conn.execute(bump)
    return read_change_seq(conn)[0]


def bump_index(conn: Connection) -> int:
    """Increment the change counter in the current transaction; returns the new value.

    Inside ``Repository.batch`` the writes of the batch share one increment, made once
    before the commit: they become visible together, so they may share the index.
    """
    batched = conn.info.get(_BATCH_INDEX)
    if batched is not None:
        if batched[0] is None:
            # The batch of a lone write on SQLite, which read no index yet: one statement
            # moves both counters now, rather than a read of the index at the start and
            # the increment at the end.  (That write names the services it changed, so
            # ``change_seq`` moves too; the batch takes it back if it names none.)  No
            # savepoint can undo this alone: a lone write that fails rolls back all.
            row = _BUMP_BOTH_RETURNING_INDEX.first(conn, {})
            if row is None:
                raise StoreUnavailableError(
                    "the registry database has no registry_state row; run `srvdns db upgrade`"
                )
            conn.info[_BATCH_SEQ] = int(row[0])
            batched[0] = int(row[1]) - 1
        batched[1] = 1
        return int(batched[0] + 1)
    conn.execute(_BUMP_INDEX)
    return read_index(conn)


def _service_pk(conn: Connection, name: str) -> int:
    pk = conn.execute(_SERVICE_PK, {"b_name": name}).scalar()
    if pk is None:
        inserted = conn.execute(services.insert(), {"name": name}).inserted_primary_key
        pk = inserted[0] if inserted else None
    if pk is None:
        raise AssertionError(f"inserting service {name!r} returned no primary key")
    return int(pk)


def _delete_service_if_empty(conn: Connection, name: str) -> None:
    pk = conn.execute(sa.select(services.c.id).where(services.c.name == name)).scalar()
    if pk is None:
        return
    left = conn.execute(
        sa.select(sa.func.count()).select_from(instances).where(instances.c.service_id == pk)
    ).scalar()
    if not left:
        conn.execute(services.delete().where(services.c.id == pk))


def _values(instance: Instance) -> dict[str, Any]:
    return {
        "address": instance.address,
        "port": instance.port,
        "weight": instance.weight,
        "warning_weight": instance.warning_weight,
        "priority": instance.priority,
        "tags": list(instance.tags),
        "meta": dict(instance.meta),
        "ttl": instance.ttl,
        "last_heartbeat": instance.last_heartbeat,
        "registered_at": instance.registered_at,
        "status": instance.status.value,
        "source": instance.source.value,
    }


def _merged_checks(wanted: Sequence[Check], existing: dict[str, tuple[int, Check]]) -> list[Check]:
    """The checks an instance gets: an existing one keeps its state when its definition is
    unchanged (except a ttl check: registering restarts the lease); the rest start anew."""
    merged = []
    for check in wanted:
        old = existing.get(check.id)
        keep = (
            old is not None and old[1].spec == check.spec and check.spec.kind is not CheckKind.TTL
        )
        merged.append(old[1] if keep and old is not None else check)
    return merged


def _write_checks(
    conn: Connection,
    instance_pk: int,
    merged: Sequence[Check],
    existing: dict[str, tuple[int, Check]],
) -> None:
    keep = {c.id for c in merged}
    stale = [pk for check_id, (pk, _) in existing.items() if check_id not in keep]
    if stale:
        conn.execute(checks.delete().where(checks.c.id.in_(stale)))
    fresh = [
        {"instance_pk": instance_pk, **_check_values(check)}
        for check in merged
        if check.id not in existing
    ]
    if fresh:
        _INSERT_CHECK.run_many(conn, fresh)
    for check in merged:
        old = existing.get(check.id)
        if old is not None and old[1] != check:
            _UPDATE_CHECK.run(conn, {"b_pk": old[0], **_check_values(check)})


def _put_instance(conn: Connection, instance: Instance) -> Instance:
    """Insert or replace ``instance`` with its checks; ``instance.status`` is recomputed as
    the worst of the checks' statuses (a kept check keeps its stored status).  Returns the
    instance as ``load_services`` would now read it back."""
    key = {"b_name": instance.service, "b_instance_id": instance.id}
    existing = _SERVICE_AND_INSTANCE.first(conn, key)
    service_pk, instance_pk, source, has_checks = (
        (None, None, None, False) if existing is None else existing
    )
    if instance_pk is None:
        if service_pk is None:
            service_pk = _service_pk(conn, instance.service)
        merged = list(instance.checks)
        stored = _with_status(instance, worst(c.status for c in merged))
        inserted = _INSERT_INSTANCE.insert(
            conn, {"service_id": service_pk, "instance_id": instance.id, **_values(stored)}
        )
        if merged:
            _write_checks(conn, inserted, merged, {})
        return _as_read(stored, merged)
    if source == Source.STATIC and instance.source is not Source.STATIC:
        raise ConflictError(
            f"instance {instance.id!r} of service {instance.service!r} is declared in "
            "the config file; change it there"
        )
    old_checks = _instance_checks(conn, instance_pk) if has_checks else {}
    merged = _merged_checks(instance.checks, old_checks)
    stored = _with_status(instance, worst(c.status for c in merged))
    _UPDATE_INSTANCE.run(conn, {"b_pk": instance_pk, **_values(stored)})
    if merged or old_checks:
        _write_checks(conn, instance_pk, merged, old_checks)
    return _as_read(stored, merged)


def _with_status(instance: Instance, status: Status) -> Instance:
    """``instance`` with ``status`` (itself when it has that status already, as a
    registration's instance usually has: a copy costs more than the comparison)."""
    return instance if instance.status is status else replace(instance, status=status)


def _as_read(stored: Instance, merged: Sequence[Check]) -> Instance:
    """``stored`` as a read of its row gives it: checks sorted by id, meta as sorted pairs
    of strings, tags as a tuple (``stored`` itself when it is that already)."""
    if not merged and stored.checks == () and stored.meta == () and type(stored.tags) is tuple:
        return stored  # most registrations: nothing to sort or compare
    tags = tuple(stored.tags)
    meta = tuple(sorted((str(k), str(v)) for k, v in stored.meta))
    found = tuple(sorted(merged, key=lambda c: c.id))
    if stored.tags is tags and stored.meta == meta and stored.checks == found:
        return stored
    return replace(stored, tags=tags, meta=meta, checks=found)


def upsert_instance(conn: Connection, instance: Instance, *, exclusive_id: bool = False) -> Change:
    """Insert or replace ``instance`` (keyed by service + id), creating its service.

    Its checks replace the stored ones; a check whose definition did not change keeps its
    state (but a ttl check restarts: registering is a heartbeat).  Raises ConflictError
    when an API instance would replace a static one, and with ``exclusive_id`` when
    another service has an instance with the same id (Consul's service ids are unique per
    agent, srvdns's per service).  The change's ``instance`` is the instance as stored,
    and the change names it in ``upserts`` instead of reading its service back.
    """
    if exclusive_id:
        other = conn.execute(
            sa.select(services.c.name)
            .select_from(_JOINED)
            .where(instances.c.instance_id == instance.id, services.c.name != instance.service)
            .limit(1)
        ).scalar()
        if other is not None:
            raise ConflictError(
                f"service {other!r} already has an instance with the id {instance.id!r}"
            )
    stored = _put_instance(conn, instance)
    index = bump_index(conn)
    key = ((instance.service, instance.id),)
    return Change((), index, stored, keys=key, upserts=(stored,))


def delete_instance(
    conn: Connection, service: str, instance_id: str, *, source: Source = Source.API
) -> Change:
    """Delete an instance (its checks with it), and its service when no instance is left.

    Raises NotFoundError, or ConflictError when ``source`` is API and the instance static.
    The change names the instance in ``removals`` instead of reading its service back.
    """
    row = _find_row(conn, service, instance_id)
    if row.source == Source.STATIC and source is not Source.STATIC:
        raise ConflictError(
            f"instance {instance_id!r} of service {service!r} is declared in the config "
            "file; remove it there"
        )
    conn.execute(checks.delete().where(checks.c.instance_pk == row.pk))
    conn.execute(instances.delete().where(instances.c.id == row.pk))
    _delete_service_if_empty(conn, service)
    index = bump_index(conn)
    key = ((service, instance_id),)
    return Change((), index, keys=key, removals=key)


def heartbeat(
    conn: Connection,
    service: str,
    instance_id: str,
    now: float,
    *,
    status: Status = Status.PASSING,
    output: str = "",
) -> Change:
    """Restart an instance's lease at ``now``; its ttl check gets ``status`` and ``output``.

    A plain heartbeat passes the check; the Consul API's ``warn`` and ``fail`` renew the
    lease too but set warning or critical, which lasts until the next heartbeat or until
    the lease lapses.  The index is bumped only when that changes what the registry
    reports: the lease had lapsed, or a check's or the instance's stored status changed
    (new output alone does not).  Raises NotFoundError, or ConflictError when the
    instance has no lease (``ttl``).
    """
    row = _find_row(conn, service, instance_id)
    if row.ttl is None:
        raise ConflictError(
            f"instance {instance_id!r} of service {service!r} has no ttl; "
            "only instances registered with a ttl take heartbeats"
        )
    lapsed = now >= row.last_heartbeat + row.ttl
    stored = _instance_checks(conn, row.pk)
    updated = []
    check_changed = False
    for pk, check in stored.values():
        if check.spec.kind is CheckKind.TTL:
            critical = status is Status.CRITICAL
            renewed = replace(
                check,
                status=status,
                output=output,
                last_change=check.last_change if check.status is status else now,
                successes=0 if critical else check.successes + 1,
                failures=check.failures + 1 if critical else 0,
            )
            if renewed != check:
                conn.execute(
                    checks.update().where(checks.c.id == pk).values(**_check_values(renewed))
                )
            check_changed = check_changed or renewed.status is not check.status
            check = renewed
        updated.append(check)
    worst_status = worst(c.status for c in updated)
    values: dict[str, Any] = {"last_heartbeat": now}
    if worst_status.value != row.status:
        values["status"] = worst_status.value
    conn.execute(instances.update().where(instances.c.id == row.pk).values(**values))
    changed = lapsed or check_changed or "status" in values
    index = bump_index(conn) if changed else read_index(conn)
    current = _current_service(conn, service)
    renewed_instance = _instance_of(current, instance_id)
    return Change((current,), index, renewed_instance, keys=((service, instance_id),))


_BOUND_INSTANCE_PK = (
    sa.select(instances.c.id)
    .select_from(_JOINED)
    .where(
        services.c.name == sa.bindparam("b_service"),
        instances.c.instance_id == sa.bindparam("b_instance"),
    )
    .scalar_subquery()
)
"""The primary key of the instance named by the parameters ``b_service``, ``b_instance``."""

_COUNTERS_UPDATE = (
    checks.update()
    .where(
        checks.c.instance_pk == _BOUND_INSTANCE_PK,
        checks.c.check_id == sa.bindparam("b_check"),
        checks.c.status == sa.bindparam("b_status"),
    )
    .values(
        output=sa.bindparam("b_output"),
        successes=sa.bindparam("b_successes"),
        failures=sa.bindparam("b_failures"),
    )
)
"""A check's output and counters, only while it keeps the status ``b_status`` (for
executemany: one row of parameters per check)."""


def renew_leases(conn: Connection, renewals: Sequence[LeaseRenewal]) -> None:
    """Persist heartbeats acknowledged from memory, two executemany statements for all.

    An instance's ``last_heartbeat`` only moves forward (a later write may already have
    stored a newer one); its ttl check gets the output and counters while it still has
    the renewal's status.  Instances deleted meanwhile match no row.  Nothing DNS
    answers changes (the catalog already has these leases), so neither does the index.
    """
    if not renewals:
        return
    conn.execute(
        instances.update()
        .where(
            instances.c.id == _BOUND_INSTANCE_PK,
            instances.c.last_heartbeat < sa.bindparam("b_at"),
        )
        .values(last_heartbeat=sa.bindparam("b_at")),
        [{"b_service": r.service, "b_instance": r.instance_id, "b_at": r.at} for r in renewals],
    )
    conn.execute(
        _COUNTERS_UPDATE,
        [
            {
                "b_service": r.service,
                "b_instance": r.instance_id,
                "b_check": r.check_id,
                "b_status": r.status.value,
                "b_output": r.output,
                "b_successes": r.successes,
                "b_failures": r.failures,
            }
            for r in renewals
        ],
    )


def apply_health(
    conn: Connection, updates: Sequence[CheckUpdate], removals: Sequence[CheckUpdate]
) -> Change:
    """Store the health loop's check results, and deregister instances critical too long.

    An update applies only while its check is stored with the same definition (and a
    lapsed ttl check only while no heartbeat renewed the lease since); the instance's
    status becomes the worst of its checks.  A removal deletes the instance
    only while that check is still stored critical since the same time, and never a
    static instance.  The index is bumped once when any check's or instance's stored
    status changed or any instance was removed (new output or counters alone do not),
    so blocking queries wake on every health change.
    """
    touched: set[str] = set()
    status_changed = False
    for update in updates:
        row = _get_row(conn, update.service, update.instance_id)
        if row is None:
            continue
        stored = _instance_checks(conn, row.pk)
        old = stored.get(update.check.id)
        if old is None or old[1].spec != update.check.spec:
            continue
        if _renewed_since(row, update.check):
            continue
        if old[1] != update.check:
            conn.execute(
                checks.update().where(checks.c.id == old[0]).values(**_check_values(update.check))
            )
            touched.add(update.service)
            status_changed = status_changed or old[1].status is not update.check.status
        stored[update.check.id] = (old[0], update.check)
        status = worst(c.status for _, c in stored.values())
        if status.value != row.status:
            conn.execute(
                instances.update().where(instances.c.id == row.pk).values(status=status.value)
            )
            status_changed = True
    removed: list[InstanceKey] = []
    for removal in removals:
        row = _get_row(conn, removal.service, removal.instance_id)
        if row is None or row.source == Source.STATIC:
            continue
        old = _instance_checks(conn, row.pk).get(removal.check.id)
        if old is None or not _same_episode(old[1], removal.check):
            continue
        conn.execute(checks.delete().where(checks.c.instance_pk == row.pk))
        conn.execute(instances.delete().where(instances.c.id == row.pk))
        _delete_service_if_empty(conn, removal.service)
        touched.add(removal.service)
        removed.append((removal.service, removal.instance_id))
        status_changed = True
    index = bump_index(conn) if status_changed else read_index(conn)
    services_now = tuple(_current_service(conn, name) for name in sorted(touched))
    return Change(services_now, index, keys=tuple(removed), health_only=True)


def save_counters(conn: Connection, updates: Sequence[CheckUpdate]) -> Change:
    """Store the output and counters of checks whose status did not change, in one
    statement (the health loop's state at shutdown).  A check stored with another status
    is left alone; nothing DNS answers changes, so neither does the index."""
    statement = _COUNTERS_UPDATE
    rows = [
        {
            "b_service": u.service,
            "b_instance": u.instance_id,
            "b_check": u.check.id,
            "b_status": u.check.status.value,
            "b_output": u.check.output,
            "b_successes": u.check.successes,
            "b_failures": u.check.failures,
        }
        for u in updates
    ]
    if rows:
        conn.execute(statement, rows)
    return Change((), read_index(conn), health_only=True)


def _renewed_since(row: _Row, check: Check) -> bool:
    """Whether a ttl check seen lapsed has had a heartbeat since: the stored lease was
    running when the health loop decided (its ``last_change``) that it had lapsed."""
    if check.spec.kind is not CheckKind.TTL or check.status is not Status.CRITICAL:
        return False
    return row.ttl is not None and row.last_heartbeat + row.ttl > check.last_change


def _same_episode(stored: Check, seen: Check) -> bool:
    """Whether the stored check is still critical since the time ``seen`` says (counters
    and output may have moved on in memory)."""
    return (
        stored.spec == seen.spec
        and stored.status is Status.CRITICAL
        and seen.status is Status.CRITICAL
        and stored.last_change == seen.last_change
    )


def _definition(instance: Instance) -> tuple[Any, ...]:
    """What the config file says about a static instance (not its health or times)."""
    return (
        instance.address,
        instance.port,
        tuple(instance.tags),
        tuple(instance.meta),
        instance.weight,
        instance.warning_weight,
        instance.priority,
        instance.ttl,
        instance.source,
        tuple(sorted((c.spec for c in instance.checks), key=lambda spec: spec.id)),
    )


def read_static_digest(conn: Connection) -> str | None:
    """The digest of the static set last synced, or None when unknown."""
    digest = conn.execute(sa.select(static_sync.c.digest).where(static_sync.c.id == 1)).scalar()
    return None if digest is None else str(digest)


def write_static_digest(conn: Connection, digest: str | None) -> None:
    """Record the digest of the static set just synced (None: forget it)."""
    conn.execute(static_sync.delete())
    if digest is not None:
        conn.execute(static_sync.insert(), {"id": 1, "digest": digest})


def sync_static(conn: Connection, desired: Sequence[Instance], digest: str | None = None) -> Change:
    """Make the static instances exactly ``desired`` (each with source STATIC).

    New ones are inserted; changed ones get the new definition and keep their health and
    times (a check whose definition did not change keeps its state); an API instance with
    a static instance's id becomes that static instance; static instances not in
    ``desired`` are deleted.  The index is bumped once when anything changed.
    """
    write_static_digest(conn, digest)
    wanted = {(i.service, i.id): i for i in desired}
    changed: set[str] = set()
    emptied: set[str] = set()  # only a deletion can leave a service without instances
    # existing rows of every source under the wanted keys, and every static row
    query = sa.select(*_ROW_COLUMNS).select_from(_JOINED)
    query = query.where(
        sa.or_(
            instances.c.source == Source.STATIC.value,
            services.c.name.in_(sorted({name for name, _ in wanted})),
        )
    )
    # every static row at a start whose config changed: plain tuples (bulk)
    rows = bulk.select_rows(conn, query)
    stored = bulk.instances_by_service(conn, rows, _checks_by_instance(conn))
    existing = {(i.service, i.id): i for service in stored for i in service.instances}
    for row in rows:
        key = (row[0], row[2])  # bulk.INSTANCE_ROW: service, pk, instance_id
        if existing[key].source is Source.STATIC and key not in wanted:
            conn.execute(checks.delete().where(checks.c.instance_pk == row[1]))
            conn.execute(instances.delete().where(instances.c.id == row[1]))
            changed.add(key[0])
            emptied.add(key[0])
    fresh: list[Instance] = []
    for key, instance in wanted.items():
        current = existing.get(key)
        if current is None:
            fresh.append(instance)
            changed.add(instance.service)
            continue
        if _definition(current) == _definition(instance):
            continue
        if current.source is Source.STATIC:  # keep the times of an edited instance
            instance = replace(
                instance,
                last_heartbeat=current.last_heartbeat,
                registered_at=current.registered_at,
            )
        _put_instance(conn, instance)
        changed.add(instance.service)
    _insert_new(conn, fresh)
    for name in emptied:
        _delete_service_if_empty(conn, name)
    if not changed:
        return Change((), read_index(conn))
    index = bump_index(conn)
    # a service whose rows were all inserted just now is what was inserted: no read back
    before = {name for name, _ in existing}
    built = _as_stored([i for i in fresh if i.service not in before])
    reread = _current_services(conn, sorted(changed - built.keys()))
    by_name = {service.name: service for service in (*reread, *built.values())}
    return Change(tuple(by_name[name] for name in sorted(changed)), index)


_MANY_SERVICES = 64
"""Above this many touched services one full read beats a query per service."""


def _current_services(conn: Connection, names: Sequence[str]) -> tuple[Service, ...]:
    """``_current_service`` of each name (in that order), in one read when there are many."""
    if len(names) <= _MANY_SERVICES:
        return tuple(_current_service(conn, name) for name in names)
    found = {service.name: service for service in load_services(conn)}
    return tuple(found.get(name) or Service(name=name, instances=()) for name in names)


def _reads_back_as_is(instance: Instance) -> bool:
    """Whether reading ``instance`` back gives an equal one (``_as_stored`` would copy it
    unchanged): tags already a tuple, no meta to sort, no checks, so passing."""
    return (
        instance.checks == ()
        and instance.meta == ()
        and instance.status is Status.PASSING
        and type(instance.tags) is tuple
    )


def _as_stored(inserted: Sequence[Instance]) -> dict[str, Service]:
    """The services made of just ``inserted``, as ``load_services`` would read them back."""
    grouped: dict[str, list[Instance]] = {}
    for instance in inserted:
        if _reads_back_as_is(instance):  # most static instances: no copy to make
            grouped.setdefault(instance.service, []).append(instance)
            continue
        stored = replace(
            instance,
            tags=tuple(instance.tags),
            meta=tuple(sorted((str(k), str(v)) for k, v in instance.meta)),
            status=worst(c.status for c in instance.checks),
            checks=tuple(sorted(instance.checks, key=lambda c: c.id)),
        )
        grouped.setdefault(instance.service, []).append(stored)
    return {
        name: Service(name=name, instances=tuple(sorted(items, key=lambda i: i.id)))
        for name, items in grouped.items()
    }


_INSERT_COLUMNS = ("service_id", "instance_id", *bulk.INSTANCE_FIELDS)
"""The columns ``_insert_new`` writes, in the order of its tuples (those of ``_values``)."""


def _insert_new(conn: Connection, fresh: Sequence[Instance]) -> None:
    """Insert instances whose keys have no row yet (the bulk of ``sync_static`` at a first
    start): their services, rows and checks, each table with one executemany."""
    if not fresh:
        return
    if len(fresh) <= _MANY_SERVICES:
        for instance in fresh:
            _put_instance(conn, instance)
        return
    service_pks = {
        row.name: row.id for row in conn.execute(sa.select(services.c.name, services.c.id))
    }
    missing = sorted({i.service for i in fresh} - service_pks.keys())
    if missing:
        bulk.insert_many(conn, services, ("name",), [(name,) for name in missing])
        service_pks = {
            row.name: row.id for row in conn.execute(sa.select(services.c.name, services.c.id))
        }
    bulk.insert_many(  # 100,000 rows at a first start: plain tuples (bulk), not dicts
        conn,
        instances,
        _INSERT_COLUMNS,
        [
            (
                service_pks[i.service],
                i.id,
                i.address,
                i.port,
                i.weight,
                i.warning_weight,
                i.priority,
                list(i.tags),
                dict(i.meta),
                i.ttl,
                i.last_heartbeat,
                i.registered_at,
                worst(c.status for c in i.checks).value,
                i.source.value,
            )
            for i in fresh
        ],
    )
    if not any(i.checks for i in fresh):
        return
    query = sa.select(services.c.name, instances.c.instance_id, instances.c.id).select_from(_JOINED)
    instance_pks = {(name, key): pk for name, key, pk in bulk.select_rows(conn, query)}
    rows = [
        (instance_pks[(i.service, i.id)], _check_values(check)) for i in fresh for check in i.checks
    ]
    columns = ("instance_pk", *rows[0][1])
    bulk.insert_many(conn, checks, columns, [(pk, *values.values()) for pk, values in rows])


# -- transactions -----------------------------------------------------------------------


class store_errors:
    """Turn a database failure into StoreUnavailableError naming ``action``.

    A class rather than a ``contextmanager`` generator: every write enters two of these,
    and a generator's set-up costs a lone write more than the rest of this does."""

    __slots__ = ("action",)

    def __init__(self, action: str) -> None:
        self.action = action

    def __enter__(self) -> None:
        return None

    def __exit__(
        self, _kind: type[BaseException] | None, exc: BaseException | None, _tb: Any
    ) -> None:
        if exc is None or not isinstance(exc, (sa.exc.SQLAlchemyError, DatabaseFileError)):
            return
        detail = getattr(exc, "orig", None) or exc
        raise StoreUnavailableError(
            f"registry database failed to {self.action}, nothing was stored: {detail}"
        ) from exc


class Repository:
    """Runs each registry operation as one committed transaction on an engine."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._reader = engine.execution_options(**{READ_ONLY: True})
        self._ambient = threading.local()
        self._writer: Connection | None = None
        """The connection ``batch`` runs on, kept checked out between batches."""

    @contextmanager
    def batch(self, renewals: Sequence[LeaseRenewal] = (), *, writes: int = 2) -> Iterator[None]:
        """One transaction for every write this thread makes inside the block (group
        commit): each write runs in a savepoint of it, so one that fails (a conflict, a
        missing instance) is rolled back alone and the others still commit together.
        ``renewals`` are persisted first, in the same transaction.

        ``writes`` is how many writes the block makes at most.  A lone write on SQLite
        with no renewals runs without a savepoint (two statements fewer on the common
        path): the transaction holds nothing else, so when it fails the whole transaction
        is rolled back instead, which undoes exactly the same.  (SQLite has one writer
        at a time, so the unique-key race a retry is for cannot happen there.)

        A write's result is final only once the block exits without an exception: if the
        commit fails, nothing of the batch is stored.
        """
        alone = writes <= 1 and not renewals and self.engine.dialect.name == "sqlite"
        try:
            with store_errors("write to the registry"), self._transaction() as conn:
                yield from self._batch(conn, renewals, alone)
        except _Undone:
            pass

    @contextmanager
    def _transaction(self) -> Iterator[Connection]:
        """``batch``'s transaction: on SQLite, on the kept writer connection, begun and
        committed on the driver (``driver.transaction``); elsewhere ``engine.begin()``."""
        if self.engine.dialect.name != "sqlite":
            with self.engine.begin() as conn:
                yield conn
            return
        conn = self._writer_connection()
        try:
            with driver.transaction(conn):
                yield conn
        except _Undone:  # rolled back as asked: the connection is fine
            raise
        except BaseException:
            # whatever went wrong, the next batch starts on a fresh connection (as each
            # batch used to): one an I/O error invalidated, or one whose rollback
            # failed, is never used again
            self.close_writer()
            raise

    def _writer_connection(self) -> Connection:
        """The connection of ``batch`` on SQLite: checked out once and kept, rather than
        taken from the pool and given back (a reset included) around every transaction,
        which cost a lone registration more than its statements.  (A server database
        keeps the pool's checkout, whose ping replaces a connection the server dropped.)"""
        if self._writer is None or self._writer.closed or self._writer.invalidated:
            self.close_writer()
            self._writer = self.engine.connect()
        return self._writer

    def close_writer(self) -> None:
        """Give ``batch``'s connection back to the pool (on the thread that ran the
        batches; before the engine is disposed of)."""
        writer, self._writer = self._writer, None
        if writer is not None:
            with contextlib.suppress(sa.exc.SQLAlchemyError):
                writer.close()

    def _batch(
        self, conn: Connection, renewals: Sequence[LeaseRenewal], alone: bool
    ) -> Iterator[None]:
        # a lone write's [failed, ran] (kept off the connection, whose info an I/O error
        # makes unreadable)
        flag = [False, False]
        self._ambient.alone = flag if alone else None
        info = conn.info
        try:
            renew_leases(conn, renewals)
            # followers reload the services of the renewals to see the new leases
            changed = {renewal.service for renewal in renewals}
            # the state row stays locked to the commit, as the increment would lock it;
            # a lone write on SQLite (one writer) reads or moves it when it asks
            lazy = alone and conn.dialect.update_returning
            info[_BATCH_INDEX] = [None if lazy else _READ_INDEX_LOCKED.scalar(conn, {}), 0]
            info[_BATCH_NAMES] = changed
            self._ambient.conn = conn
            try:
                yield
                if flag[0]:
                    raise _Undone  # rolls the transaction back, the write's error stands
                # the writes' stamps and the index, once for the batch (one statement
                # bumps both counters)
                bumped = bool(info[_BATCH_INDEX][1])
                seq = info.get(_BATCH_SEQ)
                if seq is not None:  # the lone write's bump moved both counters already
                    if changed:
                        _stamp_changes(conn, changed, seq)
                    else:
                        conn.execute(_UNBUMP_CHANGE_SEQ)
                elif changed:
                    record_changes(conn, changed, bump_index=bumped)
                elif bumped:
                    conn.execute(_BUMP_INDEX)
            finally:
                self._ambient.conn = None
        finally:
            self._ambient.alone = None
            # an invalidated connection (an I/O error) refuses even this; its info
            # goes with it, and the error that invalidated it is the one to raise
            with contextlib.suppress(sa.exc.SQLAlchemyError):
                info.pop(_BATCH_INDEX, None)
                info.pop(_BATCH_NAMES, None)
                info.pop(_BATCH_SEQ, None)

    def _read(self, action: str, fn: Callable[[Connection], T]) -> T:
        with store_errors(action), self._reader.begin() as conn:
            return fn(conn)

    def _write(self, action: str, fn: Callable[[Connection], Change]) -> Change:
        # A unique-key race with another node sharing the database (both inserted the same
        # service or instance row) rolls back; the retry then sees the other node's row.
        ambient: Connection | None = getattr(self._ambient, "conn", None)
        alone: list[bool] | None = getattr(self._ambient, "alone", None)
        for attempt in (1, 2):
            try:
                if ambient is not None and alone is not None and not alone[1]:
                    alone[1] = True  # the lone write of ``batch``: no savepoint
                    with store_errors(action):
                        return _alone(ambient, fn, alone)
                if alone is not None and alone[0]:  # more writes than ``batch`` was told
                    raise StoreUnavailableError(
                        f"could not {action}: an earlier write of its transaction failed"
                    )
                if ambient is not None:  # inside ``batch``: a savepoint of its transaction
                    with store_errors(action):
                        return _in_savepoint(ambient, fn)
                with store_errors(action), self.engine.begin() as conn:
                    change = fn(conn)
                    _record(conn, change)
                    return change
            except StoreUnavailableError as exc:
                if not isinstance(exc.__cause__, sa.exc.IntegrityError):
                    raise
                # a failed lone write leaves its transaction to be rolled back: no retry
                if attempt == 2 or (alone is not None and alone[0]):
                    raise ConflictError(
                        f"could not {action}: a concurrent write got in the way; retry"
                    ) from exc.__cause__
        raise AssertionError("unreachable")

    def load(self) -> tuple[list[Service], int]:
        """Every service and the index, read in one transaction."""
        return self._read("load the registry", lambda c: (load_services(c), read_index(c)))

    def load_services(self) -> list[Service]:
        """Every service that has instances, sorted by name."""
        return self._read("load the registry", load_services)

    def get_service(self, name: str) -> Service | None:
        """One service, or None."""
        return self._read("read a service", lambda c: get_service(c, name))

    def find_service(self, name: str) -> Service:
        """One service; raises NotFoundError."""
        return self._read("read a service", lambda c: find_service(c, name))

    def read_index(self) -> int:
        """The persistent change counter."""
        return self._read("read the index", read_index)

    def bump_index(self) -> Change:
        """Move the index, and nothing else (see ``Registry.bump_index``)."""
        return self._write("move the index", lambda c: Change((), bump_index(c)))

    def upsert_instance(self, instance: Instance, *, exclusive_id: bool = False) -> Change:
        """See ``upsert_instance``."""
        return self._write(
            "register an instance",
            lambda c: upsert_instance(c, instance, exclusive_id=exclusive_id),
        )

    def delete_instance(
        self, service: str, instance_id: str, *, source: Source = Source.API
    ) -> Change:
        """See ``delete_instance``."""
        return self._write(
            "deregister an instance",
            lambda c: delete_instance(c, service, instance_id, source=source),
        )

    def heartbeat(
        self,
        service: str,
        instance_id: str,
        now: float,
        *,
        status: Status = Status.PASSING,
        output: str = "",
    ) -> Change:
        """See ``heartbeat``."""
        return self._write(
            "record a heartbeat",
            lambda c: heartbeat(c, service, instance_id, now, status=status, output=output),
        )

    def sync_static(self, desired: Sequence[Instance], digest: str | None = None) -> Change:
        """See ``sync_static``; ``digest`` (of the config's static set) is stored with it."""
        return self._write("sync static services", lambda c: sync_static(c, desired, digest))

    def static_digest(self) -> str | None:
        """See ``read_static_digest``."""
        return self._read("read the static digest", read_static_digest)

    def save_counters(self, updates: Sequence[CheckUpdate]) -> Change:
        """See ``save_counters``."""
        return self._write("save check counters", lambda c: save_counters(c, updates))

    def apply_health(
        self, updates: Sequence[CheckUpdate], removals: Sequence[CheckUpdate] = ()
    ) -> Change:
        """See ``apply_health``."""
        return self._write("record check results", lambda c: apply_health(c, updates, removals))
