"""Schemathesis against the OpenAPI schema a live srvdns serves at ``/openapi.json``.

Every operation, the Consul-compatible ones included, gets generated requests (valid
and invalid) with the write token; no answer is a 5xx, and every answer's status code,
content type, headers and body conform to the schema.  Bounded: a few hundred
examples in all.  Blocking reads get a short ``wait`` so that none hangs.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from e2e.harness import SrvdnsProcess, start, write_config
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis import checks as st_checks
from schemathesis.specs.openapi import checks as openapi_checks

TOKEN = "schema-test-token"
CHECKS = [
    st_checks.not_a_server_error,
    openapi_checks.status_code_conformance,
    openapi_checks.content_type_conformance,
    openapi_checks.response_headers_conformance,
    openapi_checks.response_schema_conformance,
]


@pytest.fixture(scope="module")
def api_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SrvdnsProcess]:
    directory: Path = tmp_path_factory.mktemp("schema")
    (directory / "token").write_text(TOKEN + "\n")
    proc = start(write_config(directory, server='api_token_file = "token"\n'))
    with proc.http(TOKEN) as api:
        body = {"address": "10.0.0.1", "port": 80, "ttl": "30s", "tags": ["v1"]}
        api.put("/v1/services/web/instances/web-1", json=body).raise_for_status()
    yield proc
    status = proc.stop()
    problems = [line for line in proc.log if "Traceback" in line or " ERROR " in line]
    assert not problems, "\n".join(proc.log)
    assert status == 0


EXAMPLES = 10
"""Per operation and generation mode (valid and invalid data): 19 x 2 x 10 in all."""


def run_operation(operation: schemathesis.APIOperation, mode: GenerationMode) -> None:
    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    def call(case: schemathesis.Case) -> None:
        if case.query is not None and case.query.get("index") is not None:
            case.query["wait"] = "10ms"
        case.call_and_validate(
            headers={"Authorization": f"Bearer {TOKEN}"}, checks=CHECKS, timeout=10
        )

    call()


def test_every_operation_conforms_to_the_schema(api_server: SrvdnsProcess) -> None:
    schema = schemathesis.openapi.from_url(f"{api_server.api}/openapi.json")
    failures: list[str] = []
    operations = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        operations += 1
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            try:
                run_operation(operation, mode)
            except Unsatisfiable:  # nothing in it can be made invalid (unconstrained strings)
                assert mode is GenerationMode.NEGATIVE, operation.label
            except Exception as exc:  # every operation's failure, not just the first
                failures.append(f"{operation.label} ({mode.value}): {exc}")
    assert operations >= 19, "the native and the Consul endpoints"
    assert not failures, "\n\n".join(failures)
