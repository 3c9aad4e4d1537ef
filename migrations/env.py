"""Alembic environment of the registry database.

The URL comes from ``-x database=URL`` on the alembic command line, else from the
``url`` attribute that ``srvdns.registry.migrate`` sets, else from ``sqlalchemy.url`` of
alembic.ini.  ``srvdns.registry.migrate`` may instead hand over an open ``connection``
(an in-memory SQLite database has no other way in).
"""

from __future__ import annotations

from logging.config import fileConfig

from alembic import context
from sqlalchemy.engine import Connection

from srvdns.registry import tables
from srvdns.registry.engine import create_engine
from srvdns.registry.tables import metadata

config = context.config

_schema_filter = getattr(tables, "schema_filter", None)
"""None in an older srvdns package run with these scripts (through ``PYTHONPATH`` beside
an install of this tree, as the benchmarks' baselines are): it then compares all."""

if config.config_file_name is not None and config.attributes.get("configure_logging", True):
    fileConfig(config.config_file_name, disable_existing_loggers=False)


def _url() -> str:
    url = (
        context.get_x_argument(as_dictionary=True).get("database")
        or config.attributes.get("url")
        or config.get_main_option("sqlalchemy.url")
    )
    if not url:
        raise SystemExit("no database URL: pass -x database=URL")
    return str(url)


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        # srvdns's SQLite engine emits BEGIN itself, so SQLite DDL is transactional too
        transactional_ddl=True,
        render_as_batch=connection.dialect.name == "sqlite",
        include_object=None if _schema_filter is None else _schema_filter(connection.dialect.name),
    )
    with context.begin_transaction():
        context.run_migrations()


def run_offline() -> None:
    """Print the SQL instead of running it (``alembic upgrade head --sql``)."""
    context.configure(
        url=_url(),
        target_metadata=metadata,
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
    )
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    """Run the migrations against the database."""
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    engine = create_engine(_url())
    try:
        with engine.connect() as connection:
            _run(connection)
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_offline()
else:
    run_online()
