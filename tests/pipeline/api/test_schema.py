"""Schemathesis against the API's own /openapi.json: generated requests (bounded) on data
from a real worker; every response must match what the schema documents.

Driven through Hypothesis directly (one `given` per operation) rather than through
schemathesis' pytest plugin, whose fixture loader does not run on this pytest.
"""

from __future__ import annotations

from typing import Any

import schemathesis
from hypothesis import HealthCheck, given, settings

from pipeline.api.app import create_app
from pipeline.settings import Settings
from tests.pipeline.api.conftest import TOKEN

AUTH = {"Authorization": f"Bearer {TOKEN}"}
EXAMPLES = 20


def test_the_api_keeps_its_documented_contract(api_settings: Settings) -> None:
    schema = schemathesis.openapi.from_asgi("/openapi.json", create_app(api_settings))
    failures: dict[str, str] = {}
    checked = []
    for result in schema.get_all_operations():
        operation = result.ok()
        if operation.path == "/alerts/live":
            continue  # the live feed never ends by design; test_app covers its contract

        @given(case=operation.as_strategy())
        @settings(max_examples=EXAMPLES, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))  # fmt: skip
        def run(case: Any) -> None:
            case.call_and_validate(headers=AUTH)

        try:
            run()
        except BaseException as exc:  # collect every operation's failure (a FailureGroup)
            if isinstance(exc, KeyboardInterrupt):
                raise
            failures[operation.label] = str(exc)[:2000]
        checked.append(operation.label)
    assert len(checked) >= 15
    assert failures == {}, "\n\n".join(f"{k}:\n{v}" for k, v in failures.items())
