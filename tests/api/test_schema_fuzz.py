"""The API against its own OpenAPI description, fuzzed with schemathesis.

Every operation gets generated requests, valid and not: none may answer 500, and every
answer must match what ``/openapi.json`` promises (status codes, content types, bodies,
headers).  Blocking queries get no ``index`` (a generated one would hold a request for
minutes).  Whether the description is as strict as the validation (an ``address`` is
"a string" there, an IP address in fact) is not checked: srvdns validates more than the
description says, and answers 4xx naming the field.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import checks

from srvdns.api.app import create_app
from srvdns.registry.registry import Registry

EXAMPLES = 30
"""Generated requests per operation."""
CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_schema_conformance,
    checks.response_headers_conformance,
]


NATIVE = ("/v1/services", "/healthz", "/readyz", "/metrics")
"""Paths of srvdns's own API; the others are the Consul-compatible subset, which answers
errors as Consul does (plain text) and is only held to never answering 500."""


def fuzz(operation: Any) -> None:
    native = operation.path.startswith(NATIVE)

    @given(case=operation.as_strategy())
    @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
    def run(case: Any) -> None:
        if case.query:
            case.query.pop("index", None)
        case.call_and_validate(checks=CHECKS if native else [checks.not_a_server_error])

    run()


def test_every_operation_keeps_its_promises(tmp_path: Path) -> None:
    registry = Registry.open(f"sqlite:///{tmp_path}/r.db")
    try:
        app = create_app(registry, token=None, reserved_names=frozenset({"ns"}))
        schema = schemathesis.openapi.from_asgi("/openapi.json", app)
        operations = [result.ok() for result in schema.get_all_operations()]
        assert len(operations) > 10
        for operation in operations:
            fuzz(operation)
    finally:
        registry.close()
