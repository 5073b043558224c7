"""Property-based requests from the console's own OpenAPI (schemathesis), signed in: never a 5xx.

Each operation of ``/api/openapi.json`` gets ``EXAMPLES`` valid and ``EXAMPLES`` invalid generated
requests (hypothesis, bounded), sent with an operator's bearer token straight to the ASGI app.
Driven by hand rather than through schemathesis' pytest plugin, which does not run under this pytest.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable

from tests.gridwatch.console.rig import ConsoleRig

USER = "op_top"  # an operator of the community: both grids' alerts are in scope
EXAMPLES = 25


def test_no_request_makes_a_server_error(tmp_path: Path) -> None:
    rig = ConsoleRig(tmp_path)
    try:
        rig.feed.close()  # the stream route answers a finite stream
        rig.raise_alert("g1")
        rig.raise_alert("g2")
        headers = rig.bearer(USER)
        schema = schemathesis.openapi.from_asgi("/api/openapi.json", rig.app, headers=headers)
        operations = [result.ok() for result in schema.get_all_operations()]
        assert len(operations) >= 15
        failures: list[str] = []
        statuses: set[int] = set()
        for operation, mode in itertools.product(operations, schemathesis.GenerationMode):

            @given(case=operation.as_strategy(mode))
            @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None)
            def no_server_error(case: schemathesis.Case) -> None:
                response = case.call(headers=headers)
                statuses.add(response.status_code)
                if response.status_code >= 500:
                    failures.append(
                        f"{case.method} {case.formatted_path}: {response.status_code} {response.text[:200]}"
                    )

            try:
                no_server_error()
            except Unsatisfiable:
                assert mode is schemathesis.GenerationMode.NEGATIVE  # nothing to make invalid (no parameters)
        assert failures == []
        assert {200, 404, 422} <= statuses  # signed in: the requests reached the routes
    finally:
        rig.close()
