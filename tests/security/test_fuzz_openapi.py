"""Schema-driven fuzzing: schemathesis generates valid and invalid requests for every operation
of the server's own /openapi.json and checks that none is a 5xx and that every response (errors
included) has a status code, content type and body the schema documents. A small context and
tight request bounds keep each generation short, so the run stays well under 90 s."""

from __future__ import annotations

import os
import time
import traceback
from collections.abc import Iterator
from typing import Any

import pytest

schemathesis = pytest.importorskip("schemathesis")

from hypothesis import HealthCheck, given, settings  # noqa: E402
from schemathesis.checks import not_a_server_error  # noqa: E402
from schemathesis.specs.openapi.checks import (  # noqa: E402
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from logprobe.server import RequestBounds, create_app  # noqa: E402

EXAMPLES = int(os.environ.get("LOGPROBE_FUZZ_EXAMPLES", "6"))
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


@pytest.fixture(scope="module")
def fuzz_app() -> Iterator[Any]:
    from logprobe.engines.llamacpp import LlamaEngine

    engine = LlamaEngine(n_ctx=48, n_seq_max=2, n_threads=2, max_logprobs=5)
    yield create_app(
        engine,
        max_logprobs=5,
        max_queue=8,
        bounds=RequestBounds(max_prompts=2, max_n=2, max_choices=2),
    )
    engine.close()


@pytest.fixture(scope="module")
def api_schema(fuzz_app: Any) -> Any:
    return schemathesis.openapi.from_asgi("/openapi.json", fuzz_app)


def test_every_operation_answers_as_documented(api_schema: Any) -> None:
    """Each operation in turn (schemathesis' own pytest plugin does not load under this pytest),
    with Hypothesis shrinking a failure to its smallest request."""
    failures: dict[str, str] = {}
    operations = [r.ok() for r in api_schema.get_all_operations()]
    assert len(operations) >= 7
    only = os.environ.get("LOGPROBE_FUZZ_ONLY")
    for op in operations:
        if only and only not in op.label:
            continue

        @given(case=op.as_strategy())
        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def fuzz(case: Any) -> None:
            case.call_and_validate(checks=CHECKS, timeout=120)

        t0 = time.monotonic()
        try:
            fuzz()
        except Exception as exc:  # noqa: BLE001 - collected, reported together below
            failures[op.label] = "".join(traceback.format_exception(exc))[-3000:]
        print(f"{op.label}: {time.monotonic() - t0:.1f} s")
    assert not failures, "\n\n".join(f"{k}: {v}" for k, v in failures.items())


def test_the_schema_documents_errors_and_no_422(fuzz_app: Any) -> None:
    doc = fuzz_app.openapi()
    for path, item in doc["paths"].items():
        for op in item.values():
            assert "422" not in op["responses"], path
    chat = doc["paths"]["/v1/chat/completions"]["post"]["responses"]
    assert {"200", "400", "401", "413", "429"} <= set(chat)
    err = chat["400"]["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[-1]
    assert set(doc["components"]["schemas"][err]["properties"]) == {"error"}
