"""The registration fast path answers exactly as the route does, octet for octet.

The same requests go, in the same order, to two registries on the same clock: one served
by the application alone, one by the application behind the fast paths.  Every answer
(status, headers, body) must be identical, and the common case must really be answered
by the fast path (the application behind it never sees it).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from api.support import RESERVED, TOKEN, Clock
from starlette.types import ASGIApp, Receive, Scope, Send

from srvdns.api.app import create_app
from srvdns.api.fastpath import HeartbeatFastPath
from srvdns.api.fastregister import ROUTE, RegistrationFastPath
from srvdns.config import StaticInstanceConfig, StaticServiceConfig
from srvdns.registry.registry import Registry
from srvdns.tokens import Grant, Tokens

JSON = {"content-type": "application/json"}
ADMIN = {**JSON, "authorization": f"Bearer {TOKEN}"}
WEB_ONLY = "web-only-token-0123456789"
URL = "/v1/services/web/instances/web-1"


@dataclass(frozen=True)
class Case:
    """One request: method, path, headers and raw body; ``fast`` when the fast path
    must answer it itself (else the application must)."""

    path: str
    body: bytes
    headers: dict[str, str] | list[tuple[str, str]] = field(default_factory=lambda: dict(ADMIN))
    fast: bool = False
    method: str = "PUT"


def ok(path: str, body: str, **headers: str) -> Case:
    return Case(path, body.encode(), {**ADMIN, **headers}, fast=True)


def bad(path: str, body: bytes | str, headers: dict[str, str] | None = None) -> Case:
    raw = body.encode() if isinstance(body, str) else body
    return Case(path, raw, dict(ADMIN) if headers is None else headers)


CASES = [
    # answered by the fast path: new (201), replaced (200), every field, case, unicode
    ok(URL, '{"address": "10.0.0.1", "port": 8080}'),
    ok(URL, '{"address": "10.0.0.1", "port": 8080, "ttl": "30s"}'),
    ok("/v1/services/WEB/instances/web-1", '{"address": "::FFFF:10.0.0.2", "port": 1}'),
    ok(
        "/v1/services/web/instances/API_2.x",
        '{"address": "2001:db8::1", "port": 443, "tags": ["B", "a", "b"], '
        '"meta": {"zone": "eu-1", "note": "caf\u00e9 \\u2603"}, "weight": 7, '
        '"weights": {"warning": 2}, "priority": 3, "ttl": 12.5}',
    ),
    ok(
        "/v1/services/api/instances/a",
        '{"address": "10.0.0.3", "port": 80, "checks": [{"http": "/health", "interval": "5s"}, '
        '{"tcp": "10.0.0.3:81", "id": "port", "initial_status": "passing"}]}',
    ),
    ok(
        "/v1/services/api/instances/a",
        '{"address": "10.0.0.3", "port": 80, "check": {"ttl": "1m", "initial_status": "warning"}}',
    ),
    ok("/v1/services/api/instances/b", '{"address":"10.0.0.4","port":80,"weights":{"passing":0}}'),
    ok(
        "/v1/services/web/instances/w", '{"address": "10.0.0.5", "port": 2, "tags": [], "meta": {}}'
    ),
    ok("/v1/services/pg/instances/pg-1", '{"address": "10.0.0.6", "port": 5432}'),  # static: 409
    ok("/v1/services/web/instances/x", '  {"address": "10.0.0.7", "port": 3}\n'),
    ok(URL, '{"address": "10.0.0.1", "port": 80, "port": 81}'),  # json.loads: the last one
    Case(URL, '{"address": "10.0.0.9", "port": 80}'.encode("utf-16"), fast=True),  # json.loads
    # left to the application: bad bodies, names, tokens, framing
    bad(URL, ""),
    bad(URL, "{"),
    bad(URL, "[]"),
    bad(URL, "null"),
    bad(URL, '{"address": "10.0.0.1", "port": 8080, "colour": "red"}'),
    bad(URL, '{"address": "10.0.0.1", "port": 0}'),
    bad(URL, '{"address": "10.0.0.1", "port": 8080.0}'),
    bad(URL, '{"address": "10.0.0.1", "port": "8080"}'),
    bad(URL, '{"address": "web.example", "port": 8080}'),
    bad(URL, '{"address": "fe80::1%eth0", "port": 8080}'),
    bad(URL, '{"port": 8080}'),
    bad(URL, '{"address": "10.0.0.1", "port": 80, "ttl": "0s"}'),
    bad(URL, '{"address": "10.0.0.1", "port": 80, "ttl": NaN}'),
    bad(URL, '{"address": "10.0.0.1", "port": 80, "tags": ["no_underscore"]}'),
    bad(URL, '{"address": "10.0.0.1", "port": 80, "ttl": "5s", "check": {"ttl": "5s"}}'),
    bad(URL, '{"address": "10.0.0.1", "port": 80, "weight": 2, "weights": {"passing": 3}}'),
    bad(URL, '{"address": "10.0.0.1", "port": 80, "check": {"http": "/", "tcp": "a:1"}}'),
    bad(URL, '{"address": "10.0.0.1", "port": 1' + "0" * 5000 + "}"),
    bad(URL, b'{"address": "10.0.0.1", "port": 80, "meta": {"k": "\xff"}}'),
    bad(URL, '{"address": "10.0.0.1", "port": 80, "meta": {"k": "' + "v" * 70000 + '"}}'),
    bad(URL, "[" * 100000 + "]" * 100000),
    bad("/v1/services/ns/instances/a", '{"address": "10.0.0.1", "port": 80}'),
    bad("/v1/services/we_b/instances/a", '{"address": "10.0.0.1", "port": 80}'),
    bad("/v1/services/web/instances/" + "a" * 65, '{"address": "10.0.0.1", "port": 80}'),
    bad("/v1/services/web/instances/a%20b", '{"address": "10.0.0.1", "port": 80}'),
    bad(URL + "?pretty=1", '{"address": "10.0.0.1", "port": 81}'),
    bad(URL, '{"address": "10.0.0.1", "port": 82}', {"content-type": "text/plain"}),
    bad(URL, '{"address": "10.0.0.1", "port": 83}', {**ADMIN, "content-type": "text/plain"}),
    bad(URL, '{"address": "10.0.0.1", "port": 84}', {**ADMIN, "content-type": "app/json"}),
    bad(URL, '{"address": "10.0.0.1", "port": 85}', {"authorization": f"Bearer {TOKEN}"}),
    bad(
        URL,
        '{"address": "10.0.0.1", "port": 86}',
        {**ADMIN, "content-type": "application/json; charset=utf-8"},
    ),
    bad(
        URL, '{"address": "10.0.0.1", "port": 87}', {**ADMIN, "content-type": "application/x+json"}
    ),
    bad(URL, '{"address": "10.0.0.1", "port": 80}', JSON),
    bad(URL, '{"address": "10.0.0.1", "port": 80}', {**JSON, "authorization": "Bearer nope"}),
    bad(URL, '{"address": "10.0.0.1", "port": 80}', {**JSON, "authorization": f"Basic {TOKEN}"}),
    bad(
        "/v1/services/api/instances/a",
        '{"address": "10.0.0.1", "port": 80}',
        {**JSON, "authorization": f"Bearer {WEB_ONLY}"},
    ),
    ok(URL, '{"address": "10.0.0.1", "port": 8080, "ttl": "30s"}'),
    Case(URL + "/heartbeat", b"", fast=True),  # the heartbeat fast path's
    Case(URL, b"", method="DELETE"),
    # a repeated header: which one counts is the application's business
    Case(
        "/v1/services/web/instances/twice",
        b'{"address": "10.0.0.1", "port": 80}',
        [*JSON.items(), ("authorization", "Bearer nope"), ("authorization", f"Bearer {TOKEN}")],
    ),
    Case(
        "/v1/services/web/instances/twice",
        b'{"address": "10.0.0.1", "port": 80}',
        [*ADMIN.items(), ("content-type", "text/plain")],
    ),
    Case(
        URL + "/heartbeat",
        b"",
        [("authorization", "Bearer nope"), ("authorization", f"Bearer {TOKEN}")],
    ),
    Case("/v1/services/web/instances", b'{"address": "10.0.0.1", "port": 80}'),
    # a token limited to web still registers web instances on the fast path
    ok(
        "/v1/services/web/instances/z",
        '{"address": "10.0.0.8", "port": 9}',
        authorization=f"Bearer {WEB_ONLY}",
    ),
]


class Counting:
    """The application, counting the requests that reach it past the fast paths."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.state = getattr(app, "state")  # noqa: B009
        self.calls = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.calls += 1
        await self.app(scope, receive, send)


def _registry(path: Path, clock: Clock) -> Registry:
    registry = Registry.open(f"sqlite:///{path}", clock=clock)
    registry.sync_static(
        [
            StaticServiceConfig(
                name="pg",
                instances=(StaticInstanceConfig(id="pg-1", address="10.0.0.5", port=5432),),
            )
        ]
    )
    return registry


@pytest.fixture
def registries(tmp_path: Path) -> Iterator[tuple[Registry, Registry, Clock]]:
    clock = Clock()
    plain, fast = _registry(tmp_path / "plain.db", clock), _registry(tmp_path / "fast.db", clock)
    try:
        yield plain, fast, clock
    finally:
        plain.close()
        fast.close()


def _app(registry: Registry) -> ASGIApp:
    app = create_app(registry, token=TOKEN, reserved_names=RESERVED)
    app.state.tokens = Tokens.single(TOKEN) + Tokens(
        [(WEB_ONLY, Grant(name="web-only", services=("web",)))]
    )
    return app


def _answer(response: httpx.Response) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    return response.status_code, response.headers.raw, response.content


async def test_the_fast_path_answers_every_request_as_the_route_does(
    registries: tuple[Registry, Registry, Clock],
) -> None:
    plain_registry, fast_registry, clock = registries
    inner = Counting(_app(fast_registry))
    served = RegistrationFastPath(HeartbeatFastPath(inner))
    base = "http://srvdns"
    seen: set[int] = set()
    async with (
        httpx.AsyncClient(transport=httpx.ASGITransport(_app(plain_registry)), base_url=base) as a,
        httpx.AsyncClient(transport=httpx.ASGITransport(served), base_url=base) as b,
    ):
        for case in CASES:
            clock.advance(0.25)
            before = inner.calls
            request = {"content": case.body, "headers": case.headers}
            expected = await a.request(case.method, case.path, **request)
            answered = await b.request(case.method, case.path, **request)
            assert _answer(answered) == _answer(expected), case
            assert (inner.calls == before) is case.fast, (case, expected.text)
            seen.add(expected.status_code)
    # the corpus holds answers of every kind
    assert {200, 201, 204, 400, 401, 403, 404, 409, 413, 415, 422} <= seen, seen
    assert _stored(plain_registry) == _stored(fast_registry)


def _stored(registry: Registry) -> list[object]:
    return [s.instances for s in registry.services()]


async def test_registrations_answered_fast_are_counted_under_the_route(
    registries: tuple[Registry, Registry, Clock],
) -> None:
    _, registry, _ = registries
    app = _app(registry)
    served = RegistrationFastPath(HeartbeatFastPath(app))
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(served), base_url="http://x"
    ) as http:
        for instance in ("a", "b", "a"):
            body = b'{"address": "10.0.0.1", "port": 80}'
            response = await http.put(
                f"/v1/services/web/instances/{instance}", content=body, headers=ADMIN
            )
            assert response.status_code in (200, 201)
        conflict = await http.put("/v1/services/pg/instances/pg-1", content=body, headers=ADMIN)
        assert conflict.status_code == 409
    requests = app.state.request_metrics.requests
    assert requests.labels("PUT", ROUTE, "201")._value.get() == 2
    assert requests.labels("PUT", ROUTE, "200")._value.get() == 1
    assert requests.labels("PUT", ROUTE, "409")._value.get() == 1
    assert {(i.service, i.id) for s in registry.services() for i in s.instances} == {
        ("pg", "pg-1"),
        ("web", "a"),
        ("web", "b"),
    }
