"""Pure pieces of the server: field paths, legacy token strings, text offsets, clamping."""

from __future__ import annotations

import importlib
import logging
import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from logprobe.server.errors import field_path
from logprobe.server.protocol import ChatCompletionRequest
from logprobe.server.render import TextOffsets, finite_logprob, legacy_logprobs, legacy_token
from logprobe.types import LOGPROB_FLOOR, TokenLogprob

SETTINGS = settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def _isort_key(name: str) -> tuple[int, str]:
    return (0 if name.isupper() else 1 if name[0].isupper() else 2, name)


@pytest.mark.parametrize(
    "module",
    [
        "",
        ".app",
        ".convert",
        ".errors",
        ".protocol",
        ".recording",
        ".render",
        ".responses",
        ".serving",
        ".streaming",
        ".tokens",
    ],
)
def test_public_api_sorted(module: str) -> None:
    mod = importlib.import_module(f"logprobe.server{module}")
    assert mod.__all__ == sorted(mod.__all__, key=_isort_key)  # constants, classes, functions
    for name in mod.__all__:
        assert hasattr(mod, name)


@pytest.mark.parametrize(
    ("loc", "body", "missing", "expected"),
    [
        (("body", "temperature"), {"temperature": "x"}, False, "temperature"),
        (("body", "stop", "list[str]", 0), {"stop": [1]}, False, "stop[0]"),
        (("body", "stop", "str"), {"stop": [1]}, False, "stop"),
        (
            ("body", "prompt", "list[list[int]]", 0, 1),
            {"prompt": [[1, "a"]]},
            False,
            "prompt[0][1]",
        ),
        (
            ("body", "messages", 0, "content", "str"),
            {"messages": [{"content": 5}]},
            False,
            "messages[0].content",
        ),
        (("body", "messages", 0, "role"), {"messages": [{}]}, True, "messages[0].role"),
        (("body",), [1], False, None),
    ],
)
def test_field_path(
    loc: tuple[object, ...], body: object, missing: bool, expected: str | None
) -> None:
    assert field_path(loc, body, missing=missing) == expected  # type: ignore[arg-type]


def test_legacy_token_marks_partial_utf8() -> None:
    assert legacy_token(b" caf\xc3\xa9", "?") == " café"
    assert legacy_token(b"\xe2\x80", "\ufffd") == "bytes:\\xe2\\x80"
    assert legacy_token(None, "x") == "x"


@SETTINGS
@given(st.text(min_size=1, max_size=40), st.data())
def test_text_offsets_follow_characters(text: str, data: st.DataObject) -> None:
    raw = text.encode("utf-8")
    cuts = sorted(data.draw(st.sets(st.integers(1, max(1, len(raw) - 1)), max_size=8)))
    pieces = [raw[a:b] for a, b in zip([0, *cuts], [*cuts, len(raw)], strict=True) if a < b]
    offsets = TextOffsets(5)
    starts = [offsets.advance(p, "") for p in pieces]
    assert starts[0] == 5 and starts == sorted(starts)
    assert offsets.position == 5 + len(text)
    pos = 0
    for piece, start in zip(pieces, starts, strict=True):
        try:  # a piece that starts on a character boundary starts at that character
            assert start == 5 + len(raw[:pos].decode("utf-8"))
        except UnicodeDecodeError:
            pass
        pos += len(piece)


@SETTINGS
@given(st.one_of(st.none(), st.floats(allow_nan=True, allow_infinity=True)))
def test_finite_logprob_is_always_json_safe(value: float | None) -> None:
    v = finite_logprob(value)
    assert math.isfinite(v) and LOGPROB_FLOOR <= v <= 0.0


def test_legacy_logprobs_first_prompt_token_is_null() -> None:
    toks = [TokenLogprob("A", b"A", None), TokenLogprob("B", b"B", -float("inf"))]
    out = legacy_logprobs(toks, TextOffsets())
    assert out["token_logprobs"] == [None, LOGPROB_FLOOR]
    assert out["top_logprobs"] == [None, {"B": LOGPROB_FLOOR}]
    assert out["text_offset"] == [0, 1]


def test_unknown_fields_warn_at_every_level(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="logprobe.server")
    ChatCompletionRequest.model_validate(
        {"messages": [{"role": "user", "content": "hi", "mood": 1}], "wibble": 2}
    )
    text = " ".join(r.getMessage() for r in caplog.records)
    assert "wibble" in text and "mood" in text
