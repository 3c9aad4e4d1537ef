"""Schema migrations, run with the Alembic scripts shipped inside the srvdns package.

``upgrade(url)`` is ``alembic upgrade head`` without alembic.ini or a source checkout:
the scripts are found as the package ``srvdns.migrations`` (the repository's
``migrations/`` folder), so a wheel installed anywhere can migrate its database.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy.engine import Connection

from srvdns.errors import RegistryError, StoreUnavailableError
from srvdns.registry.engine import READ_ONLY, create_engine
from srvdns.registry.repository import store_errors


def script_location() -> Path:
    """The folder of the migration scripts: those of the source checkout this package is
    in, else of the installed package.  (The checkout's first: a tree run through
    ``PYTHONPATH`` beside an editable install of another tree migrates with its own
    scripts, not the other tree's.)"""
    checkout = Path(__file__).resolve().parents[2]
    if (checkout / "pyproject.toml").is_file() and (checkout / "migrations" / "env.py").is_file():
        return checkout / "migrations"
    try:
        files = resources.files("srvdns.migrations")
    except ModuleNotFoundError:  # running from a source checkout that is not installed
        return Path(__file__).resolve().parents[2] / "migrations"
    if not isinstance(files, Path):
        raise RegistryError(
            f"the srvdns migrations are not plain files ({files!r}); install srvdns unzipped"
        )
    return files


def alembic_config(url: str | None = None, *, connection: Connection | None = None) -> Config:
    """An Alembic config for the shipped scripts and a URL or an open connection."""
    config = Config()
    config.set_main_option("script_location", str(script_location()).replace("%", "%%"))
    config.attributes["url"] = url
    config.attributes["connection"] = connection
    config.attributes["configure_logging"] = False
    return config


def head() -> str:
    """The newest revision of the shipped scripts."""
    revision = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if revision is None:
        raise RegistryError("srvdns ships no migration scripts")
    return revision


def upgrade_connection(connection: Connection) -> None:
    """Bring the database behind ``connection`` to the newest revision, in its transaction."""
    try:
        command.upgrade(alembic_config(connection=connection), "head")
    except CommandError as exc:
        raise RegistryError(f"cannot upgrade the registry schema: {exc}") from exc


def upgrade(url: str) -> None:
    """``alembic upgrade head`` for the database at ``url``, in one transaction; idempotent."""
    engine = create_engine(url)
    try:
        with store_errors("upgrade the schema"), engine.begin() as connection:
            upgrade_connection(connection)
    finally:
        engine.dispose()


def current_revision(connection: Connection) -> str | None:
    """The revision the database behind ``connection`` is at; None before the first upgrade."""
    return MigrationContext.configure(connection).get_current_revision()


def current(url: str) -> str | None:
    """The revision the database at ``url`` is at; None before the first upgrade."""
    engine = create_engine(url)
    try:
        reader = engine.execution_options(**{READ_ONLY: True})
        with store_errors("read the schema revision"), reader.begin() as connection:
            return current_revision(connection)
    finally:
        engine.dispose()


def is_up_to_date(url: str) -> bool:
    """Whether the database at ``url`` is at the newest shipped revision."""
    return current(url) == head()


def ensure_current(connection: Connection) -> None:
    """Raise StoreUnavailableError unless the database is at the newest shipped revision."""
    revision = current_revision(connection)
    newest = head()
    if revision != newest:
        raise StoreUnavailableError(
            f"the registry schema is at revision {revision or '(none)'}, this srvdns needs "
            f"{newest}: run `srvdns db upgrade`"
        )
