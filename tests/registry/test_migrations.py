"""The Alembic migrations create exactly srvdns.registry.tables, from the CLI or the package."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from srvdns.registry import migrate
from srvdns.registry.engine import create_engine
from srvdns.registry.tables import metadata, schema_filter

REPO = Path(__file__).resolve().parents[2]


def _diffs(url: str) -> list[object]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            opts = {"compare_type": True, "include_object": schema_filter(conn.dialect.name)}
            context = MigrationContext.configure(conn, opts=opts)
            return list(compare_metadata(context, metadata))
    finally:
        engine.dispose()


def _tables(url: str) -> set[str]:
    engine = create_engine(url)
    try:
        return set(sa.inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_migration_creates_exactly_the_tables(url):
    migrate.upgrade(url)
    assert _diffs(url) == []
    assert _tables(url) == {*metadata.tables, "alembic_version"}


def test_upgrade_is_idempotent_and_seeds_the_index(url):
    assert migrate.current(url) is None
    assert not migrate.is_up_to_date(url)
    migrate.upgrade(url)
    migrate.upgrade(url)
    assert migrate.current(url) == migrate.head() == "0007"
    assert migrate.is_up_to_date(url)
    engine = create_engine(url)
    with engine.connect() as conn:
        # from 1: Consul's blocking queries take index 0 as "do not block" (0003)
        assert conn.execute(sa.text('SELECT id, "index" FROM registry_state')).all() == [(1, 1)]
    engine.dispose()


def test_scripts_are_found_without_alembic_ini():
    location = migrate.script_location()
    package = Path(migrate.__file__).resolve().parents[1]
    if package.parent == REPO:  # run from this checkout: its own, whatever is installed
        assert location == REPO / "migrations"
    else:  # an installed copy: the scripts installed with it
        assert location == package / "migrations"
    assert (location / "env.py").is_file()
    assert (location / "versions" / "0001_initial.py").is_file()
    assert (location / "script.py.mako").is_file()


def test_alembic_cli_from_the_repository_root(tmp_path):
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    command = [sys.executable, "-m", "alembic", "-x", f"database={url}", "upgrade", "head"]
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert migrate.current(url) == "0007"
    assert _diffs(url) == []

    down = [sys.executable, "-m", "alembic", "-x", f"database={url}", "downgrade", "base"]
    done = subprocess.run(down, cwd=REPO, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert _tables(url) == {"alembic_version"}


def _indexes(url: str, table: str) -> set[str]:
    engine = create_engine(url)
    try:
        return {index["name"] or "" for index in sa.inspect(engine).get_indexes(table)}
    finally:
        engine.dispose()


def test_the_change_seq_index_is_for_postgresql_only(tmp_path, url):
    migrate.upgrade(url)
    on_postgresql = url.startswith("postgresql")
    assert ("ix_service_changes_change_seq" in _indexes(url, "service_changes")) == on_postgresql
    if on_postgresql:
        return
    # a SQLite database of 0006 loses it on upgrade, and gets it back on downgrade
    older = f"sqlite:///{tmp_path / 'older.db'}"
    alembic = [sys.executable, "-m", "alembic", "-x", f"database={older}"]
    for step, present in (("0006", True), ("head", False)):
        done = subprocess.run(
            [*alembic, "upgrade", step], cwd=REPO, capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 0, done.stderr
        assert ("ix_service_changes_change_seq" in _indexes(older, "service_changes")) == present
    done = subprocess.run(
        [*alembic, "downgrade", "0006"], cwd=REPO, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert "ix_service_changes_change_seq" in _indexes(older, "service_changes")
