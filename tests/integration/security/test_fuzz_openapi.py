"""Schemathesis fuzzes every operation of the server's OpenAPI document, with a fixed budget and a fixed
seed (derandomized), with an admin key and with none: no answer may be a 5xx."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import httpx
import pytest
from openapi_spec_validator import OpenAPIV31SpecValidator

from liveml import Registry
from tests.integration.security.conftest import bearer, guarded, iris_models, make_keys

schemathesis = pytest.importorskip("schemathesis")
hypothesis = pytest.importorskip("hypothesis")

#: examples per operation with the admin key; the document has ~20 operations
BUDGET = 30
#: examples per operation without a key: the guard answers all of them (401) before any route reads them
KEYLESS_BUDGET = 10


def _fuzz(
    operation: object,
    url: str,
    headers: dict[str, str],
    budget: int,
    failures: list[str],
    seen: Counter[int],
) -> None:
    from hypothesis import HealthCheck, given, settings

    @settings(
        max_examples=budget,
        derandomize=True,
        database=None,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        phases=[hypothesis.Phase.explicit, hypothesis.Phase.generate],
    )
    @given(case=operation.as_strategy())  # type: ignore[attr-defined]
    def run(case: object) -> None:
        response = case.call(base_url=url, headers=headers, timeout=30)  # type: ignore[attr-defined]
        seen[response.status_code] += 1
        if response.status_code >= 500:
            failures.append(
                f"{case.method} {case.formatted_path} {case.query} {str(case.body)[:200]} → "  # type: ignore[attr-defined]
                f"{response.status_code} {response.text[:300]}"
            )

    run()


@pytest.mark.slow
def test_fuzzing_the_openapi_surface_finds_no_5xx(tmp_path: Path, model_files: dict[str, Path]) -> None:
    from liveml import Settings

    registry = Registry.init(Settings(home=tmp_path / "home", user="tester"))
    iris_models(registry, model_files)
    with guarded(registry) as served:
        keys = make_keys(served.keys)
        document = httpx.get(f"{served.url}/openapi.json", headers=bearer(keys.admin)).json()
        OpenAPIV31SpecValidator(document).validate()
        assert document["security"] and document["paths"]["/health/ready"]["get"]["security"] == []
        schema = schemathesis.openapi.from_dict(document)
        failures: list[str] = []
        seen: Counter[int] = Counter()
        operations = [result.ok() for result in schema.get_all_operations()]
        assert len(operations) >= 15
        for operation in operations:
            for headers, budget in ((bearer(keys.admin), BUDGET), ({}, KEYLESS_BUDGET)):
                _fuzz(operation, served.url, headers, budget, failures, seen)
        assert served.host.ready
        print(f"statuses from {len(operations)} operations: {sorted(seen.items())}")
    registry.close()
    assert not failures, "\n".join(failures[:20])
    # the fuzzing really ran: answered requests, refused ones, and 401s for the keyless half
    assert sum(seen.values()) >= 4 * len(operations) and seen[200] and seen[400] and seen[401]
