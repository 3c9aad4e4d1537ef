"""Database trouble through the API: 503 with a JSON error, nothing stored, and a
``/readyz`` that names the problem and recovers by itself."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import httpx

from srvdns.registry.registry import Registry

BIG_META = {f"k{n}": "v" * 500 for n in range(40)}


def cap_pages(registry: Registry, pages: int | None) -> None:
    """Cap the writing connection's file size: SQLite's SQLITE_FULL, as on a full disk."""

    def cap() -> None:
        connection = registry._repository._writer_connection()
        current = connection.exec_driver_sql("PRAGMA page_count").scalar()
        connection.exec_driver_sql(f"PRAGMA max_page_count = {pages or current}")
        connection.rollback()

    registry._call(cap)


async def test_a_full_database_answers_503_and_stores_nothing(
    http: httpx.AsyncClient, registry: Registry
) -> None:
    small = {"address": "10.0.0.1", "port": 80}
    assert (await http.put("/v1/services/web/instances/first", json=small)).status_code == 201
    cap_pages(registry, None)
    body = {**small, "meta": BIG_META}
    refused = None
    for n in range(50):
        response = await http.put(f"/v1/services/web/instances/i{n}", json=body)
        if response.status_code != 201:
            refused = f"i{n}"
            break
    assert refused is not None
    assert response.status_code == 503
    assert response.json() == {
        "error": "registry database failed to register an instance, nothing was stored: "
        "database or disk is full"
    }
    listed = (await http.get("/v1/services/web")).json()["instances"]
    assert refused not in {i["id"] for i in listed}
    cap_pages(registry, 1_000_000)
    assert (await http.put(f"/v1/services/web/instances/{refused}", json=body)).status_code == 201


async def test_readyz_names_a_held_lock_and_recovers(
    http: httpx.AsyncClient, tmp_path: Path
) -> None:
    holder = sqlite3.connect(tmp_path / "r.db", isolation_level=None)
    try:
        holder.execute("BEGIN EXCLUSIVE")
        response = await http.get("/readyz")
        assert response.status_code == 503
        assert response.json()["checks"]["database"] == "error: database is locked"
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    response = await http.get("/readyz")
    assert response.status_code == 200
    assert response.json()["checks"]["database"] == "ok"
