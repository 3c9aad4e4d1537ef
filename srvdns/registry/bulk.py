"""The repository's bulk paths: many rows in or out with one statement, minus SQLAlchemy's
per-row work.

A first start with 100,000 static instances inserts them all, and every start reads them
all back.  Through ``Connection.execute`` each row costs a parameter dict, type
processors and, when read, named attribute lookups on a ``Row``: several times what the
database itself takes.  Here the statements are still built by SQLAlchemy and compiled
for the connection's dialect (the same portable SQL on SQLite and PostgreSQL), and run
with ``exec_driver_sql``, so errors are wrapped as ever and the engine's event hooks
fire; what the type processors did per row (JSON in and out) is done here, on tuples.
Only ``repository`` calls this module: it is part of the one place with SQL.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from srvdns.model import Check, Instance, Service, Source, Status

_STATUS: Mapping[str, Status] = {status.value: status for status in Status}
_SOURCE: Mapping[str, Source] = {source.value: source for source in Source}

INSTANCE_FIELDS = (
    "address",
    "port",
    "weight",
    "warning_weight",
    "priority",
    "tags",
    "meta",
    "ttl",
    "last_heartbeat",
    "registered_at",
    "status",
    "source",
)
"""An instance row's own columns, in the order the bulk paths read and write them."""

INSTANCE_ROW = ("service", "pk", "instance_id", *INSTANCE_FIELDS)
"""The columns ``instances_by_service`` reads, in order (``repository._ROW_COLUMNS``)."""


def _json_encoder(conn: Connection) -> Callable[[Any], str]:
    """What SQLAlchemy's JSON type writes: the dialect's serializer, else ``json.dumps``."""
    dumps: Callable[[Any], str] = getattr(conn.dialect, "_json_serializer", None) or json.dumps
    empty_list, empty_dict = dumps([]), dumps({})

    def encode(value: Any) -> str:
        if not value:  # the common case at scale: no tags, no meta
            if isinstance(value, list):
                return empty_list
            if isinstance(value, dict):
                return empty_dict
        return dumps(value)

    return encode


def insert_many(
    conn: Connection, table: sa.Table, columns: Sequence[str], rows: Sequence[Sequence[Any]]
) -> None:
    """Insert ``rows`` (values in the order of ``columns``) into ``table`` with one
    executemany.  JSON columns take Python values, encoded as SQLAlchemy's JSON type
    encodes them; other values go to the driver as they are."""
    if not rows:
        return
    names = list(columns)
    compiled = table.insert().compile(dialect=conn.dialect, column_keys=names)
    encode = _json_encoder(conn)
    json_at = [n for n, name in enumerate(names) if isinstance(table.c[name].type, sa.JSON)]
    if json_at:
        encoded: list[Sequence[Any]] = []
        for row in rows:
            values = list(row)
            for n in json_at:
                values[n] = encode(values[n])
            encoded.append(values)
        rows = encoded
    params: list[Any]
    if compiled.positional:
        order = [names.index(name) for name in compiled.positiontup or ()]
        params = [tuple([row[n] for n in order]) for row in rows]
    else:
        params = [dict(zip(names, row, strict=True)) for row in rows]
    conn.exec_driver_sql(str(compiled), params)


def select_rows(conn: Connection, query: sa.Select[Any]) -> Sequence[Sequence[Any]]:
    """Every row of ``query`` as a plain sequence of driver values: no type processing,
    so a JSON column may come as text (SQLite) or already decoded (PostgreSQL)."""
    # IN lists rendered into the text, their values bound one by one
    compiled = query.compile(dialect=conn.dialect, compile_kwargs={"render_postcompile": True})
    bound = compiled.construct_params()
    params: Any
    if compiled.positional:
        params = tuple(bound[name] for name in compiled.positiontup or ())
    else:
        params = bound
    return conn.exec_driver_sql(str(compiled), params).all()


def _decoder(conn: Connection) -> Callable[[Any], Any]:
    """Decodes a JSON column's driver value as SQLAlchemy's JSON type would."""
    loads: Callable[[str | bytes], Any] = (
        getattr(conn.dialect, "_json_deserializer", None) or json.loads
    )

    def decode(value: Any) -> Any:
        return loads(value) if isinstance(value, str | bytes) else value

    return decode


def instances_by_service(
    conn: Connection, rows: Sequence[Sequence[Any]], found: Mapping[int, Sequence[Check]]
) -> list[Service]:
    """The services made of instance ``rows`` (columns as ``INSTANCE_ROW``, grouped by
    service in the order read), each instance with its checks from ``found`` (by row
    primary key): what ``repository`` builds from ``Row`` objects, built from tuples."""
    decode = _decoder(conn)
    tags_of: dict[Any, tuple[str, ...]] = {}
    meta_of: dict[Any, tuple[tuple[str, str], ...]] = {}
    grouped: dict[str, list[Instance]] = {}
    current_name: str | None = None
    current: list[Instance] = []
    for row in rows:
        (
            service,
            pk,
            instance_id,
            address,
            port,
            weight,
            warning_weight,
            priority,
            tags_value,
            meta_value,
            ttl,
            last_heartbeat,
            registered_at,
            status,
            source,
        ) = row
        # The same JSON text decodes to the same tuple: decode each distinct text once.
        key = tags_value if isinstance(tags_value, str | bytes) else None
        tags = tags_of.get(key) if key is not None else None
        if tags is None:
            tags = tuple(decode(tags_value) or ())
            if key is not None:
                tags_of[key] = tags
        key = meta_value if isinstance(meta_value, str | bytes) else None
        meta = meta_of.get(key) if key is not None else None
        if meta is None:
            decoded = decode(meta_value) or {}
            meta = tuple(sorted((str(k), str(v)) for k, v in decoded.items()))
            if key is not None:
                meta_of[key] = meta
        instance = Instance(
            service=service,
            id=instance_id,
            address=address,
            port=port,
            tags=tags,
            meta=meta,
            weight=weight,
            warning_weight=warning_weight,
            priority=priority,
            ttl=ttl,
            last_heartbeat=last_heartbeat,
            status=_STATUS[status],
            source=_SOURCE[source],
            registered_at=registered_at,
            checks=tuple(found.get(pk, ())),
        )
        if service != current_name:
            current = grouped.setdefault(service, [])
            current_name = service
        current.append(instance)
    return [Service(name=name, instances=tuple(items)) for name, items in grouped.items()]
