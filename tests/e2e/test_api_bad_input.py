"""Bad request bodies against a live srvdns, over real HTTP: each gets a 4xx with an
error body (JSON on the native API, Consul's plain text on the Consul endpoints) and
stores nothing - the registry's index and services, and DNS, are as before."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace

import dns.rcode
import httpx
import pytest
from e2e.harness import SrvdnsProcess, start, write_config

from srvdns.api.app import MAX_BODY_SIZE

NATIVE = "/v1/services/bad/instances/bad-1"
CONSUL = "/v1/agent/service/register"
JSON = {"content-type": "application/json"}
VALID = {"address": "10.0.0.9", "port": 80}


def nested(depth: int, inner: str = "1") -> str:
    return '{"a":' * depth + inner + "}" * depth


@dataclass(frozen=True)
class Bad:
    """One bad request: a body, its headers, and a fragment of the expected error."""

    name: str
    content: bytes | Callable[[], Iterator[bytes]]
    headers: dict[str, str]
    status: int
    native_error: str
    consul_status: int
    consul_error: str


def consul_version(raw: bytes) -> bytes:
    """A native body with Consul's field names instead."""
    for native, consul in (
        (b'"address": ', b'"Name": "bad", "ID": "bad-1", "Address": '),
        (b'"port": ', b'"Port": '),
        (b'"meta": ', b'"Meta": '),
        (b'"tags": ', b'"Tags": '),
    ):
        raw = raw.replace(native, consul)
    return raw


def body(**fields: object) -> bytes:
    return json.dumps({**VALID, **fields}).encode()


BIG = b'{"address": "10.0.0.9", "port": 80, "pad": "' + b"x" * MAX_BODY_SIZE + b'"}'

CASES = [
    Bad("oversized", BIG, JSON, 413, "larger than 64 KiB", 413, "larger than 64 KiB"),
    Bad(
        "oversized, chunked",
        lambda: iter([BIG[:40_000], BIG[40_000:]]),
        JSON,
        413,
        "larger than 64 KiB",
        413,
        "larger than 64 KiB",
    ),
    Bad(
        "deeply nested arrays",
        b'{"address": "10.0.0.9", "port": 80, "tags": ' + b"[" * 30_000 + b"]" * 30_000 + b"}",
        JSON,
        400,
        "nested too deeply",
        400,
        "nested too deeply",
    ),
    Bad(
        "deeply nested meta",
        b'{"address": "10.0.0.9", "port": 80, "meta": ' + nested(5000).encode() + b"}",
        JSON,
        400,
        "nested too deeply",
        400,
        "nested too deeply",
    ),
    Bad(
        "meta nested a little",
        body(meta={"a": {"b": {"c": "d"}}}),
        JSON,
        422,
        "meta.a",
        400,
        "Meta",
    ),
    Bad(
        "huge meta map",
        body(meta={f"k{n}": "v" for n in range(3000)}),
        JSON,
        422,
        "at most 64",
        400,
        "more than 64 entries",
    ),
    Bad(
        "huge meta value",
        body(meta={"k": "v" * 20_000}),
        JSON,
        422,
        "longer than 512",
        400,
        "longer than 512",
    ),
    Bad(
        "huge meta key",
        body(meta={"k" * 20_000: "v"}),
        JSON,
        422,
        "meta.kkk",
        400,
        "Meta",
    ),
    Bad(
        "huge tag list",
        body(tags=[f"t{n}" for n in range(3000)]),
        JSON,
        422,
        "at most 64",
        400,
        "at most 64 tags",
    ),
    Bad(
        "invalid UTF-8",
        b'{"address": "10.0.0.9", "port": 80, "meta": {"a": "\xff\xfe"}}',
        JSON,
        400,
        "not UTF-8",
        400,
        "not UTF-8",
    ),
    Bad(
        "a 5000-digit number",
        b'{"address": "10.0.0.9", "port": ' + b"9" * 5000 + b"}",
        JSON,
        400,
        "more than 4300 digits",
        400,
        "more than 4300 digits",
    ),
    Bad("truncated JSON", body()[:-3], JSON, 400, "not valid JSON", 400, "decode failed"),
    Bad("a JSON array", b"[1, 2]", JSON, 422, "must be a JSON object", 400, ""),
    Bad("JSON null", b"null", JSON, 422, "must be a JSON object", 400, ""),
    Bad("empty", b"", JSON, 422, "a JSON object is required", 400, "body is empty"),
    Bad("text/plain", body(), {"content-type": "text/plain"}, 415, "must be JSON", 0, ""),
    Bad(
        "form",
        b"address=10.0.0.9&port=80",
        {"content-type": "application/x-www-form-urlencoded"},
        415,
        "must be JSON",
        400,
        "decode failed",
    ),
    Bad("xml", b"<a/>", {"content-type": "application/xml"}, 415, "must be JSON", 400, ""),
    Bad(
        "multipart",
        b'--b\r\nContent-Disposition: form-data; name="address"\r\n\r\n10.0.0.9\r\n--b--\r\n',
        {"content-type": "multipart/form-data; boundary=b"},
        415,
        "must be JSON",
        400,
        "",
    ),
    Bad("no content type", body(), {}, 415, "must be JSON", 0, ""),
    Bad("NaN", b'{"address": "10.0.0.9", "port": NaN}', JSON, 422, "port", 400, ""),
    Bad("NUL in a string", body(address="10.0.0.9\x00"), JSON, 422, "address", 400, ""),
]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SrvdnsProcess]:
    proc = start(write_config(tmp_path_factory.mktemp("bad-input")))
    with proc.http() as api:
        api.put("/v1/services/web/instances/web-1", json=VALID).raise_for_status()
    yield proc
    status = proc.stop()
    assert not [line for line in proc.log if "Traceback" in line or " ERROR " in line], proc.log
    assert status == 0


def state(proc: SrvdnsProcess) -> tuple[str, list[dict[str, object]]]:
    with proc.http() as api:
        reply = api.get("/v1/services")
        reply.raise_for_status()
        agent = api.get("/v1/agent/services").json()
    return reply.headers["X-Consul-Index"], [reply.json(), agent]


def send(proc: SrvdnsProcess, path: str, case: Bad) -> httpx.Response:
    content = case.content() if callable(case.content) else case.content
    with proc.http() as api:
        return api.put(path, content=content, headers=case.headers)


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_native_api_refuses_and_stores_nothing(server: SrvdnsProcess, case: Bad) -> None:
    before = state(server)
    reply = send(server, NATIVE, case)
    assert reply.status_code == case.status, reply.text
    assert reply.headers["content-type"] == "application/json"
    error = reply.json()
    assert isinstance(error["error"], str)
    assert case.native_error in json.dumps(error)
    assert len(reply.content) < 4096, "errors do not echo huge input"
    assert state(server) == before
    assert server.query("bad.service.local", "A").rcode() == dns.rcode.NXDOMAIN


CONSUL_CASES = [case for case in CASES if case.consul_status]


@pytest.mark.parametrize("case", CONSUL_CASES, ids=[case.name for case in CONSUL_CASES])
def test_consul_api_refuses_and_stores_nothing(server: SrvdnsProcess, case: Bad) -> None:
    """The same bodies with Consul's field names (``Name``, ``Address``, ``Meta``...)."""
    if isinstance(case.content, bytes):
        case = replace(case, content=consul_version(case.content))
    before = state(server)
    reply = send(server, CONSUL, case)
    assert reply.status_code == case.consul_status, reply.text
    assert reply.headers["content-type"].startswith("text/plain")
    assert case.consul_error in reply.text
    assert len(reply.content) < 4096
    assert state(server) == before
    assert server.query("bad.service.local", "A").rcode() == dns.rcode.NXDOMAIN


def test_a_valid_registration_still_works(server: SrvdnsProcess) -> None:
    """The server is not worse for all that: a good request is stored and answered."""
    with server.http() as api:
        assert api.put("/v1/services/good/instances/good-1", json=VALID).status_code == 201
    reply = server.query("good.service.local", "A")
    assert [rdata.address for rrset in reply.answer for rdata in rrset] == ["10.0.0.9"]
