"""The start-up static sync is skipped exactly when the stored static set is the config's."""

from __future__ import annotations

import pytest

from srvdns.config import HealthConfig, StaticInstanceConfig, StaticServiceConfig
from srvdns.registry.registry import Registry, static_digest


def service(name: str, *ports: int, tags: tuple[str, ...] = ()) -> StaticServiceConfig:
    return StaticServiceConfig(
        name=name,
        instances=tuple(StaticInstanceConfig(address="10.0.1.1", port=p, tags=tags) for p in ports),
    )


def ports(registry: Registry, name: str) -> list[int]:
    return sorted(i.port for i in registry.find_service(name).instances)


@pytest.fixture
def syncs(monkeypatch: pytest.MonkeyPatch, registry: Registry) -> list[int]:
    """How many static sets the registry's repository was asked to store."""
    calls: list[int] = []
    real = registry._repository.sync_static

    def counting(desired, digest=None):
        calls.append(len(desired))
        return real(desired, digest)

    monkeypatch.setattr(registry._repository, "sync_static", counting)
    return calls


def test_digest_follows_everything_the_static_set_is_built_from():
    base = static_digest([service("db", 5432)])
    assert static_digest([service("db", 5432)]) == base
    assert static_digest([service("db", 5433)]) != base
    assert static_digest([service("db", 5432, tags=("primary",))]) != base
    assert static_digest([service("db", 5432), service("web", 80)]) != base
    assert static_digest([service("db", 5432)], HealthConfig(interval=30)) != base


def test_an_unchanged_static_set_is_not_synced_again(registry, syncs):
    registry.sync_static([service("db", 5432, 5433)])
    index = registry.holder.current.index
    registry.sync_static([service("db", 5432, 5433)])
    assert syncs == [2]
    assert registry.holder.current.index == index
    assert ports(registry, "db") == [5432, 5433]


def test_a_changed_static_set_is_synced(registry, syncs):
    registry.sync_static([service("db", 5432, 5433)])
    registry.sync_static([service("db", 5432), service("web", 80)])
    assert syncs == [2, 2]
    assert ports(registry, "db") == [5432]
    assert ports(registry, "web") == [80]
    stored = registry._repository.load_services()
    assert {s.name: [i.port for i in s.instances] for s in stored} == {"db": [5432], "web": [80]}
    registry.sync_static([service("db", 5432)], HealthConfig(interval=30))  # defaults too
    assert syncs == [2, 2, 1]


def test_the_digest_survives_a_restart_and_another_config_clears_it(url, clock):
    first = Registry.open(url, clock=clock)
    first.sync_static([service("db", 5432)])
    first.close()
    second = Registry.open(url, clock=clock)
    try:
        calls: list[int] = []
        real = second._repository.sync_static
        second._repository.sync_static = lambda d, g=None: calls.append(1) or real(d, g)  # type: ignore[method-assign]
        second.sync_static([service("db", 5432)])
        assert calls == []  # restart with the same config: nothing to do
        second.sync_static([service("db", 6000)])
        assert calls == [1]
        assert ports(second, "db") == [6000]
    finally:
        second.close()


async def test_a_reload_stores_the_digest_too(registry, syncs):
    await registry.resync_static([service("db", 5432)])
    registry.sync_static([service("db", 5432)])  # what the next start would do
    assert syncs == [1]
