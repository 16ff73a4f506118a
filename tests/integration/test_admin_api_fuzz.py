"""Property-based fuzzing of the admin API from its own OpenAPI schema (schemathesis strategies driven
by hypothesis): whatever the generated request, the answer is never a server error, with or without
a valid admin key."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import APIOperation
from schemathesis.core.result import Err, Ok
from schemathesis.errors import InvalidSchema

from bastion.admin.api import create_admin_app
from bastion.config import load_settings
from bastion.services.runtime import Runtime

Operation = APIOperation[Any, Any, Any, Any]  # schemathesis's operation (parameter and definition types)


def test_admin_api_never_answers_with_a_server_error(tmp_path: Path) -> None:
    rt = Runtime.open(load_settings(None, data_dir=str(tmp_path / "data")))
    try:
        created = rt.identity.bootstrap_admin()
        assert created is not None
        # The admin application itself (no server lifespan): what the OpenAPI schema describes.
        schema = schemathesis.openapi.from_asgi("/openapi.json", create_admin_app(rt))
        operations = [_operation(result) for result in schema.get_all_operations()]
        assert len(operations) >= 15  # every admin route is in the schema
        for op in operations:
            _never_a_server_error(op, created.token)
    finally:
        rt.close()


def _operation(result: Ok[Operation] | Err[InvalidSchema]) -> Operation:
    """The operation, or fail the test with the schema error (the schema must describe every route)."""
    if isinstance(result, Err):
        raise AssertionError(f"the admin API's schema has an invalid operation: {result.err()}")
    return result.ok()


def _never_a_server_error(op: Operation, token: str) -> None:
    @given(case=op.as_strategy())
    @settings(max_examples=20, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    def check(case: Any) -> None:
        for headers in ({"Authorization": f"Bearer {token}"}, {}):
            response = case.call(headers=headers)
            assert response.status_code < 500, (op.label, response.status_code, response.text[:300])

    check()
