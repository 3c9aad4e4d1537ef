"""``[server] durability``: the SQLite ``synchronous`` level each setting gives a connection."""

from __future__ import annotations

from pathlib import Path

import pytest

from srvdns import config
from srvdns.errors import ConfigError
from srvdns.registry.engine import create_engine
from srvdns.registry.registry import Registry

NORMAL, FULL = 1, 2
"""``PRAGMA synchronous`` reads back as a number."""


@pytest.mark.parametrize(("durability", "level"), [("process", NORMAL), ("power", FULL)])
def test_each_durability_sets_synchronous_on_new_connections(
    sqlite_url: str, durability: str, level: int
) -> None:
    engine = create_engine(sqlite_url, durability)
    try:
        for _ in range(2):
            with engine.connect() as connection:
                assert connection.exec_driver_sql("PRAGMA synchronous").scalar() == level
            engine.dispose()  # the next round opens a new connection
    finally:
        engine.dispose()


@pytest.mark.parametrize(("text", "level"), [("", NORMAL), ('durability = "power"\n', FULL)])
def test_the_config_setting_reaches_the_registry_connection(
    tmp_path: Path, text: str, level: int
) -> None:
    path = tmp_path / "srvdns.toml"
    path.write_text(
        f'[server]\ndatabase = "sqlite:///r.db"\n{text}[[zone]]\nname = "service.local"\n'
    )
    loaded = config.load(path)
    registry = Registry.open(loaded.database_url(), durability=loaded.server.durability)
    try:
        with registry._repository.engine.connect() as connection:
            assert connection.exec_driver_sql("PRAGMA synchronous").scalar() == level
    finally:
        registry.close()


def test_an_unknown_durability_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "srvdns.toml"
    path.write_text('[server]\ndurability = "disk"\n[[zone]]\nname = "service.local"\n')
    with pytest.raises(ConfigError, match=r"server\.durability"):
        config.load(path)


def test_create_engine_refuses_an_unknown_durability(sqlite_url: str) -> None:
    with pytest.raises(ValueError, match="durability"):
        create_engine(sqlite_url, "disk")
