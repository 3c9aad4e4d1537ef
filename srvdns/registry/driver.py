"""The write path's hottest statements, compiled once and run on SQLite's driver directly.

Through SQLAlchemy every statement costs ~12 us of Python (execution context, events,
the compiled-cache lookup, the result's set-up) against ~1 us in SQLite itself, and a
registration's transaction runs six.  A ``DriverStatement`` is a SQLAlchemy statement
compiled once for SQLite: the SQL text, the order of its parameters, each parameter's
type processing (JSON, floats) and the values of its literals; on the ``pysqlite`` driver
it runs on the connection's ``sqlite3`` cursor, on any other database through
SQLAlchemy as before.  A driver error is raised as the ``DBAPIError`` SQLAlchemy would
raise (so ``store_errors`` and the conflict retry see what they always saw), and a
connection whose error means the file must be reopened is invalidated, as the engine's
``handle_error`` listener would have it (``engine._discard_after_io_error``).
"""

from __future__ import annotations

import contextlib
import operator
import sqlite3
from collections import namedtuple
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.sql.compiler import SQLCompiler

from srvdns.registry import trouble


class _Compiled:
    """One statement compiled for SQLite with a given set of parameter names."""

    __slots__ = (
        "defaults",
        "fill",
        "order",
        "pick",
        "processed",
        "processors",
        "row",
        "row_processors",
        "sql",
    )

    def __init__(self, statement: Any, keys: Sequence[str], dialect: sa.Dialect) -> None:
        compiled = statement.compile(dialect=dialect, column_keys=list(keys))
        if not isinstance(compiled, SQLCompiler) or compiled.positiontup is None:
            raise TypeError(f"not a positional SQLite statement: {statement}")
        self.sql: str = compiled.string
        self.order: list[str] = list(compiled.positiontup)
        self.defaults = {name: bind.effective_value for name, bind in compiled.binds.items()}
        self.processors: list[Callable[[Any], Any] | None] = [
            _bind_processor(compiled.binds[name].type, dialect) for name in self.order
        ]
        given = set(keys)
        self.fill = {name: self.defaults.get(name) for name in self.order if name not in given}
        """The values of the parameters ``keys`` leaves out (literals, or None)."""
        self.pick = _picker(self.order)
        self.processed = tuple(
            (position, process)
            for position, process in enumerate(self.processors)
            if process is not None
        )
        """(position, type processing) of the parameters that have any."""
        columns = list(getattr(statement, "selected_columns", ()))
        self.row = _row_type([c.key for c in columns])
        self.row_processors: list[Callable[[Any], Any] | None] = [
            c.type.dialect_impl(dialect).result_processor(dialect, None) for c in columns
        ]

    def values(self, params: Mapping[str, Any]) -> tuple[Any, ...]:
        """The statement's parameters in order, processed, from ``params`` (which has the
        keys this was compiled for): picked in one C call, then only the parameters with
        type processing touched, rather than a Python step per parameter."""
        found = self.pick({**self.fill, **params} if self.fill else params)
        if not self.processed:
            return found
        out = list(found)
        for position, process in self.processed:
            value = out[position]
            if value is not None:
                out[position] = process(value)
        return tuple(out)


class DriverStatement:
    """A statement of the write path; see the module's docstring."""

    def __init__(self, statement: Any) -> None:
        self.statement = statement
        self._compiled: dict[tuple[str, ...], _Compiled] = {}

    def _for(self, conn: Connection, keys: tuple[str, ...]) -> _Compiled:
        compiled = self._compiled.get(keys)
        if compiled is None:
            compiled = self._compiled[keys] = _Compiled(self.statement, keys, conn.dialect)
        return compiled

    def first(self, conn: Connection, params: Mapping[str, Any]) -> tuple[Any, ...] | None:
        """The first row, as a tuple, or None."""
        if not _direct(conn):
            row = conn.execute(self.statement, dict(params)).first()
            return None if row is None else tuple(row)
        compiled = self._for(conn, tuple(params))
        cursor = _run(conn, compiled.sql, compiled.values(params))
        try:
            found = cursor.fetchone()
        finally:
            cursor.close()
        return None if found is None else tuple(found)

    def rows(self, conn: Connection, params: Mapping[str, Any]) -> list[Any]:
        """Every row of a SELECT, each readable by column name (JSON columns decoded)."""
        if not _direct(conn):
            return list(conn.execute(self.statement, dict(params)).all())
        compiled = self._for(conn, tuple(params))
        cursor = _run(conn, compiled.sql, compiled.values(params))
        try:
            found = cursor.fetchall()
        finally:
            cursor.close()
        make, processors = compiled.row._make, compiled.row_processors
        return [
            make(
                value if process is None or value is None else process(value)
                for value, process in zip(raw, processors, strict=True)
            )
            for raw in found
        ]

    def run(self, conn: Connection, params: Mapping[str, Any]) -> None:
        """Run the statement once (an UPDATE, a DELETE)."""
        if not _direct(conn):
            conn.execute(self.statement, dict(params))
            return
        compiled = self._for(conn, tuple(params))
        _run(conn, compiled.sql, compiled.values(params)).close()

    def scalar(self, conn: Connection, params: Mapping[str, Any]) -> Any:
        """The first column of the first row, or None."""
        row = self.first(conn, params)
        return None if row is None else row[0]

    def insert(self, conn: Connection, params: Mapping[str, Any]) -> int:
        """Insert one row; its integer primary key."""
        if not _direct(conn):
            inserted = conn.execute(self.statement, dict(params)).inserted_primary_key
            if not inserted or inserted[0] is None:
                raise AssertionError("an insert returned no primary key")
            return int(inserted[0])
        compiled = self._for(conn, tuple(params))
        cursor = _run(conn, compiled.sql, compiled.values(params))
        try:
            if cursor.lastrowid is None:
                raise AssertionError("an insert returned no primary key")
            return int(cursor.lastrowid)
        finally:
            cursor.close()

    def run_many(self, conn: Connection, rows: Sequence[Mapping[str, Any]]) -> None:
        """Run the statement once per row of parameters (all rows with the same names);
        a single row is run as ``run`` runs it (an ``executemany`` of one costs more)."""
        if not rows:
            return
        if len(rows) == 1:
            self.run(conn, rows[0])
            return
        if not _direct(conn):
            conn.execute(self.statement, [dict(row) for row in rows])
            return
        compiled = self._for(conn, tuple(rows[0]))
        _run(conn, compiled.sql, [compiled.values(row) for row in rows], many=True).close()


def _bind_processor(kind: Any, dialect: sa.Dialect) -> Callable[[Any], Any] | None:
    """``kind``'s processing of a parameter on ``dialect``; for JSON, an empty list or
    dict (the tags and meta of most instances) gets the text it always gives them
    without serialising it again."""
    process: Callable[[Any], Any] | None = kind.dialect_impl(dialect).bind_processor(dialect)
    if process is None or not isinstance(kind, sa.JSON):
        return process
    empties: dict[type, Any] = {list: process([]), dict: process({})}

    def dump(value: Any) -> Any:
        if not value:
            found = empties.get(type(value))
            if found is not None:
                return found
        return process(value)

    return dump


def _picker(names: Sequence[str]) -> Callable[[Mapping[str, Any]], tuple[Any, ...]]:
    """A function from a mapping to the tuple of its values for ``names``, in order."""
    if not names:
        return lambda _params: ()
    if len(names) == 1:
        (name,) = names
        return lambda params: (params[name],)
    return operator.itemgetter(*names)


def _row_type(names: list[str]) -> Any:
    """A SELECT's rows: read by position and by column name, as SQLAlchemy's rows are."""
    return namedtuple("Row", names)


def execute(conn: Connection, sql: str) -> None:
    """Run a statement without parameters on SQLite's driver (a group commit's
    savepoints, a write's BEGIN), failing as ``DriverStatement`` fails; through
    SQLAlchemy on other drivers."""
    if not _direct(conn):
        conn.exec_driver_sql(sql)
        return
    _run(conn, sql, ()).close()


class transaction:
    """A write transaction on ``conn``, committed when the block ends, rolled back when
    it raises.  On SQLite's driver, BEGIN IMMEDIATE (after ``trouble.check_file``, as
    ``engine`` does for SQLAlchemy's transactions) and COMMIT go to the driver directly:
    SQLAlchemy's transaction objects and events cost a lone write more than SQLite's own
    work.  A statement run through SQLAlchemy inside the block joins the transaction
    (``engine`` begins none while the driver has one open), and its transaction then
    commits the driver's.  On other drivers: ``conn.begin()``.  (A class, not a
    ``contextmanager`` generator, for the same reason.)"""

    __slots__ = ("conn", "outer")

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.outer: Any = None
        """SQLAlchemy's transaction, on other drivers."""

    def __enter__(self) -> None:
        conn = self.conn
        if not _direct(conn):
            self.outer = conn.begin()
            self.outer.__enter__()
            return
        trouble.check_file(conn.engine)  # never write into a removed file
        execute(conn, "BEGIN IMMEDIATE")

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: Any
    ) -> None:
        if self.outer is not None:
            self.outer.__exit__(kind, exc, tb)
            return
        conn = self.conn
        if exc is not None:
            _rollback(conn)
            return
        try:
            if conn.in_transaction():
                conn.commit()
            else:
                execute(conn, "COMMIT")
        except BaseException:
            _rollback(conn)
            raise


def _rollback(conn: Connection) -> None:
    """Undo ``transaction``'s work; a connection that cannot (closed, invalidated, its
    transaction already rolled back by SQLite) has nothing left to undo."""
    with contextlib.suppress(Exception):
        if conn.in_transaction():
            conn.rollback()
    with contextlib.suppress(Exception):
        raw: Any = conn.connection.driver_connection
        if raw.in_transaction:
            raw.execute("ROLLBACK")


def _direct(conn: Connection) -> bool:
    return conn.dialect.name == "sqlite" and conn.dialect.driver == "pysqlite"


def _run(conn: Connection, sql: str, values: Any, *, many: bool = False) -> Any:
    """Execute on the driver's cursor; a driver error as SQLAlchemy would raise it.
    (pysqlite's DBAPI connection is the driver's: ``dbapi_connection`` is a plain
    attribute, where ``driver_connection`` goes through two properties.)"""
    raw: Any = conn.connection.dbapi_connection
    cursor = raw.cursor()
    try:
        if many:
            cursor.executemany(sql, values)
        else:
            cursor.execute(sql, values)
    except sqlite3.Error as exc:
        cursor.close()
        if trouble.needs_reopen(exc):
            conn.invalidate(exc)
        raise sa.exc.DBAPIError.instance(sql, values, exc, sqlite3.Error) from exc
    return cursor
