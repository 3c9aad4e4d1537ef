"""The only SQL in srvdns: reads and writes of the registry tables, one transaction each.

The functions take a ``Connection`` inside a transaction and compose; ``Repository``
runs each of them as one transaction of its own, commits, and turns database failures
into ``StoreUnavailableError`` (the transaction rolled back, nothing partial stored).
Every write that may change a DNS answer bumps ``registry_state.index`` in the same
transaction.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any, TypeAlias, TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine, Row

from srvdns.errors import ConflictError, NotFoundError, StoreUnavailableError
from srvdns.model import Instance, Service, Source, Status
from srvdns.registry.engine import READ_ONLY
from srvdns.registry.tables import STATE_ROW_ID, instances, registry_state, services

T = TypeVar("T")
_Row: TypeAlias = Row[*tuple[Any, ...]]

_INDEX = registry_state.c["index"]  # not .c.index: that is ColumnCollection.index()

_ROW_COLUMNS = (
    services.c.name.label("service"),
    instances.c.id.label("pk"),
    instances.c.instance_id,
    instances.c.address,
    instances.c.port,
    instances.c.weight,
    instances.c.priority,
    instances.c.tags,
    instances.c.meta,
    instances.c.ttl,
    instances.c.last_heartbeat,
    instances.c.registered_at,
    instances.c.status,
    instances.c.source,
)

_JOINED = services.join(instances, instances.c.service_id == services.c.id)


@dataclass(frozen=True, slots=True)
class Change:
    """What a committed write did: the services it touched, as they now are, and the index.

    A service in ``services`` with no instances has been deleted.
    """

    services: tuple[Service, ...]
    index: int
    instance: Instance | None = None


# -- reads ------------------------------------------------------------------------------


def _to_instance(row: _Row) -> Instance:
    meta = row.meta or {}
    return Instance(
        service=row.service,
        id=row.instance_id,
        address=row.address,
        port=row.port,
        tags=tuple(row.tags or ()),
        meta=tuple(sorted((str(k), str(v)) for k, v in meta.items())),
        weight=row.weight,
        priority=row.priority,
        ttl=row.ttl,
        last_heartbeat=row.last_heartbeat,
        status=Status(row.status),
        source=Source(row.source),
        registered_at=row.registered_at,
    )


def _group(rows: Iterable[_Row]) -> list[Service]:
    grouped: dict[str, list[Instance]] = {}
    for row in rows:
        grouped.setdefault(row.service, []).append(_to_instance(row))
    return [Service(name=name, instances=tuple(found)) for name, found in grouped.items()]


def load_services(conn: Connection) -> list[Service]:
    """Every service that has instances, sorted by name, instances sorted by id."""
    query = (
        sa.select(*_ROW_COLUMNS)
        .select_from(_JOINED)
        .order_by(services.c.name, instances.c.instance_id)
    )
    return _group(conn.execute(query))


def get_service(conn: Connection, name: str) -> Service | None:
    """The service ``name`` with its instances sorted by id, or None when it has none."""
    query = (
        sa.select(*_ROW_COLUMNS)
        .select_from(_JOINED)
        .where(services.c.name == name)
        .order_by(instances.c.instance_id)
    )
    found = _group(conn.execute(query))
    return found[0] if found else None


def find_service(conn: Connection, name: str) -> Service:
    """The service ``name``; raises NotFoundError."""
    service = get_service(conn, name)
    if service is None:
        raise NotFoundError(f"no service {name!r}")
    return service


def _current_service(conn: Connection, name: str) -> Service:
    return get_service(conn, name) or Service(name=name, instances=())


def _find_row(conn: Connection, service: str, instance_id: str) -> _Row:
    query = (
        sa.select(*_ROW_COLUMNS)
        .select_from(_JOINED)
        .where(services.c.name == service, instances.c.instance_id == instance_id)
    )
    row = conn.execute(query).first()
    if row is None:
        if conn.execute(sa.select(services.c.id).where(services.c.name == service)).first():
            raise NotFoundError(f"service {service!r} has no instance {instance_id!r}")
        raise NotFoundError(f"no service {service!r}")
    return row


def read_index(conn: Connection) -> int:
    """The registry's persistent change counter."""
    index = conn.execute(sa.select(_INDEX).where(registry_state.c.id == STATE_ROW_ID)).scalar()
    if index is None:
        raise StoreUnavailableError(
            "the registry database has no registry_state row; run `srvdns db upgrade`"
        )
    return int(index)


# -- writes -----------------------------------------------------------------------------


def bump_index(conn: Connection) -> int:
    """Increment the change counter in the current transaction; returns the new value."""
    conn.execute(
        registry_state.update()
        .where(registry_state.c.id == STATE_ROW_ID)
        .values({_INDEX: _INDEX + 1})
    )
    return read_index(conn)


def _service_pk(conn: Connection, name: str) -> int:
    pk = conn.execute(sa.select(services.c.id).where(services.c.name == name)).scalar()
    if pk is None:
        inserted = conn.execute(services.insert().values(name=name)).inserted_primary_key
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
        "priority": instance.priority,
        "tags": list(instance.tags),
        "meta": dict(instance.meta),
        "ttl": instance.ttl,
        "last_heartbeat": instance.last_heartbeat,
        "registered_at": instance.registered_at,
        "status": instance.status.value,
        "source": instance.source.value,
    }


def _put_instance(conn: Connection, instance: Instance) -> None:
    service_pk = _service_pk(conn, instance.service)
    key = (instances.c.service_id == service_pk, instances.c.instance_id == instance.id)
    existing = conn.execute(sa.select(instances.c.id, instances.c.source).where(*key)).first()
    if existing is None:
        conn.execute(
            instances.insert().values(
                service_id=service_pk, instance_id=instance.id, **_values(instance)
            )
        )
        return
    if existing.source == Source.STATIC and instance.source is not Source.STATIC:
        raise ConflictError(
            f"instance {instance.id!r} of service {instance.service!r} is declared in "
            "the config file; change it there"
        )
    conn.execute(
        instances.update().where(instances.c.id == existing.id).values(**_values(instance))
    )


def upsert_instance(conn: Connection, instance: Instance) -> Change:
    """Insert or replace ``instance`` (keyed by service + id), creating its service.

    Raises ConflictError when an API instance would replace a static one.
    """
    _put_instance(conn, instance)
    index = bump_index(conn)
    return Change((_current_service(conn, instance.service),), index, instance)


def delete_instance(
    conn: Connection, service: str, instance_id: str, *, source: Source = Source.API
) -> Change:
    """Delete an instance, and its service when no instance is left.

    Raises NotFoundError, or ConflictError when ``source`` is API and the instance static.
    """
    row = _find_row(conn, service, instance_id)
    if row.source == Source.STATIC and source is not Source.STATIC:
        raise ConflictError(
            f"instance {instance_id!r} of service {service!r} is declared in the config "
            "file; remove it there"
        )
    conn.execute(instances.delete().where(instances.c.id == row.pk))
    _delete_service_if_empty(conn, service)
    index = bump_index(conn)
    return Change((_current_service(conn, service),), index)


def heartbeat(conn: Connection, service: str, instance_id: str, now: float) -> Change:
    """Restart an instance's lease at ``now``.

    The index is bumped only when the lease had lapsed (the instance comes back to DNS).
    Raises NotFoundError, or ConflictError when the instance has no lease (``ttl``).
    """
    row = _find_row(conn, service, instance_id)
    if row.ttl is None:
        raise ConflictError(
            f"instance {instance_id!r} of service {service!r} has no ttl; "
            "only instances registered with a ttl take heartbeats"
        )
    lapsed = now >= row.last_heartbeat + row.ttl
    conn.execute(instances.update().where(instances.c.id == row.pk).values(last_heartbeat=now))
    index = bump_index(conn) if lapsed else read_index(conn)
    renewed = replace(_to_instance(row), last_heartbeat=now)
    return Change((_current_service(conn, service),), index, renewed)


def _definition(instance: Instance) -> tuple[Any, ...]:
    """What the config file says about a static instance (not its health or times)."""
    return (
        instance.address,
        instance.port,
        tuple(instance.tags),
        tuple(instance.meta),
        instance.weight,
        instance.priority,
        instance.ttl,
        instance.source,
    )


def sync_static(conn: Connection, desired: Sequence[Instance]) -> Change:
    """Make the static instances exactly ``desired`` (each with source STATIC).

    New ones are inserted; changed ones get the new definition and keep their health and
    times; an API instance with a static instance's id becomes that static instance;
    static instances not in ``desired`` are deleted.  The index is bumped once when
    anything changed.
    """
    wanted = {(i.service, i.id): i for i in desired}
    changed: set[str] = set()
    # existing rows of every source under the wanted keys, and every static row
    query = sa.select(*_ROW_COLUMNS).select_from(_JOINED)
    query = query.where(
        sa.or_(
            instances.c.source == Source.STATIC.value,
            services.c.name.in_(sorted({name for name, _ in wanted})),
        )
    )
    existing = {(row.service, row.instance_id): row for row in conn.execute(query)}
    for key, row in existing.items():
        if row.source == Source.STATIC and key not in wanted:
            conn.execute(instances.delete().where(instances.c.id == row.pk))
            changed.add(row.service)
    for key, instance in wanted.items():
        found = existing.get(key)
        if found is None:
            _put_instance(conn, instance)
            changed.add(instance.service)
            continue
        current = _to_instance(found)
        if _definition(current) == _definition(instance):
            continue
        values = _values(instance)
        if current.source is Source.STATIC:  # keep health and times of an edited instance
            for name in ("status", "last_heartbeat", "registered_at"):
                del values[name]
        conn.execute(instances.update().where(instances.c.id == found.pk).values(**values))
        changed.add(instance.service)
    for name in changed:
        _delete_service_if_empty(conn, name)
    if not changed:
        return Change((), read_index(conn))
    index = bump_index(conn)
    return Change(tuple(_current_service(conn, name) for name in sorted(changed)), index)


# -- transactions -----------------------------------------------------------------------


@contextmanager
def store_errors(action: str) -> Iterator[None]:
    """Turn a database failure into StoreUnavailableError naming ``action``."""
    try:
        yield
    except sa.exc.SQLAlchemyError as exc:
        detail = getattr(exc, "orig", None) or exc
        raise StoreUnavailableError(
            f"registry database failed to {action}, nothing was stored: {detail}"
        ) from exc


class Repository:
    """Runs each registry operation as one committed transaction on an engine."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._reader = engine.execution_options(**{READ_ONLY: True})

    def _read(self, action: str, fn: Callable[[Connection], T]) -> T:
        with store_errors(action), self._reader.begin() as conn:
            return fn(conn)

    def _write(self, action: str, fn: Callable[[Connection], T]) -> T:
        # A unique-key race with another node sharing the database (both inserted the same
        # service or instance row) rolls back; the retry then sees the other node's row.
        for attempt in (1, 2):
            try:
                with store_errors(action), self.engine.begin() as conn:
                    return fn(conn)
            except StoreUnavailableError as exc:
                if not isinstance(exc.__cause__, sa.exc.IntegrityError):
                    raise
                if attempt == 2:
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

    def upsert_instance(self, instance: Instance) -> Change:
        """See ``upsert_instance``."""
        return self._write("register an instance", lambda c: upsert_instance(c, instance))

    def delete_instance(
        self, service: str, instance_id: str, *, source: Source = Source.API
    ) -> Change:
        """See ``delete_instance``."""
        return self._write(
            "deregister an instance",
            lambda c: delete_instance(c, service, instance_id, source=source),
        )

    def heartbeat(self, service: str, instance_id: str, now: float) -> Change:
        """See ``heartbeat``."""
        return self._write("record a heartbeat", lambda c: heartbeat(c, service, instance_id, now))

    def sync_static(self, desired: Sequence[Instance]) -> Change:
        """See ``sync_static``."""
        return self._write("sync static services", lambda c: sync_static(c, desired))
