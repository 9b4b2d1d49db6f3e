"""Schemathesis against /api/v1/openapi.json, bounded examples per operation.

A real gunicorn on 127.0.0.1 (production settings) holding a few sessions; schemathesis
generates requests for every operation the schema declares (new routers included, the day they
are added), with a valid API key holding every scope, and checks: no server error, status codes
the schema declares, responses that match their declared schemas, content types and headers.
EXAMPLES (SCHEMATHESIS_EXAMPLES in the environment) bounds the examples per operation.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.support.live_processes import (
    LiveServer,
    create_api_key,
    live_database,
    picoflow_document,
)
from tests.support.live_processes import request as http_request

pytestmark = pytest.mark.slow

EXAMPLES = int(os.environ.get("SCHEMATHESIS_EXAMPLES", "25"))
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    response_schema_conformance,
    content_type_conformance,
    response_headers_conformance,
]


@pytest.fixture(scope="module")
def live_api(tmp_path_factory) -> Iterator[tuple[LiveServer, str]]:
    tmp = tmp_path_factory.mktemp("s9")
    with live_database(tmp, "schema") as database:
        key = create_api_key(database, tmp)
        # Generous limits: schemathesis must meet the API's answers, not its rate limit.
        server = LiveServer(tmp, database, workers=2, threads=4, env={"API_RATE_LIMIT": "0"})
        try:
            for n in range(3):
                answer = http_request(
                    server.port, "POST", "/api/v1/sessions", picoflow_document(turns=n + 1),
                    key=key,
                )  # fmt: skip
                assert answer.status == 201, answer.body
            yield server, key
        finally:
            server.stop()


def test_every_operation_conforms_to_its_schema(live_api):
    server, key = live_api
    base_url = f"http://127.0.0.1:{server.port}"
    api_schema = schemathesis.openapi.from_url(f"{base_url}/api/v1/openapi.json", timeout=30)
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) >= 8  # at least the documented REST operations
    failures: dict[str, str] = {}
    statuses: dict[int, int] = {}
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            derandomize=True,
            suppress_health_check=list(HealthCheck),
            database=None,
            phases=[Phase.explicit, Phase.generate],
        )
        def run(case) -> None:
            response = case.call_and_validate(
                base_url=base_url,
                headers={"Authorization": f"Bearer {key}"},
                checks=CHECKS,
                timeout=30,
            )
            statuses[response.status_code] = statuses.get(response.status_code, 0) + 1

        try:
            run()
        except Exception as exc:
            failures[operation.label] = str(exc)[:2000]
    print(f"schemathesis: {len(operations)} operations, up to {EXAMPLES} examples each: {statuses}")
    assert sum(statuses.values()) >= len(operations) * min(EXAMPLES, 5)
    assert not failures, "\n\n".join(f"{label}:\n{text}" for label, text in failures.items())
