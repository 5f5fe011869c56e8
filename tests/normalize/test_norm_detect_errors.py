"""Shape detection, text loading (JSON / JSONL / SSE) and bad input: every failure is a
NormalizeError naming the offending field path, never a traceback or a silent empty result."""

from __future__ import annotations

import json

import pytest
from norm_fixtures import (
    ANTHROPIC_MESSAGE,
    chat_chunk,
    chat_entry,
    chat_response,
    completion_response,
    gem_cand,
    gemini_response,
    lcpp_prob,
    lcpp_response,
    ollama_generate,
    responses_object,
    tgi_response,
    tgi_token,
)

from logprobe import NormalizeError
from logprobe.normalize import (
    PROVIDERS,
    detect_provider,
    iter_sse,
    load_payload,
    normalize,
    normalize_with_notes,
)

SAMPLES = {
    "openai_chat": chat_response([chat_entry("Hi", -0.1)], "Hi"),
    "openai_completions": completion_response("Hi", ["Hi"], [-0.1], [{"Hi": -0.1}], [0], (1, 1)),
    "openai_responses": responses_object([("Hi", [chat_entry("Hi", -0.1)])]),
    "llamacpp": lcpp_response("Hi", [lcpp_prob(1, "Hi", -0.1, [])]),
    "tgi": tgi_response("Hi", [tgi_token(1, "Hi", -0.1)], [], []),
    "ollama": ollama_generate("Hi", [chat_entry("Hi", -0.1)]),
    "gemini": gemini_response("Hi", [gem_cand("Hi", -0.1)], None),
    "anthropic": ANTHROPIC_MESSAGE,
}


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_each_shape_is_detected(name: str) -> None:
    assert detect_provider(SAMPLES[name]) == name
    assert name in PROVIDERS


@pytest.mark.parametrize("name", sorted(set(SAMPLES) - {"anthropic"}))
def test_neutral_round_trip_through_to_dict(name: str) -> None:
    comp = normalize(SAMPLES[name])
    assert comp.provider == name
    again = normalize(json.dumps(comp.to_dict()))
    assert again == comp and detect_provider(comp.to_dict()) == "logprobe"


def test_explicit_provider_and_aliases() -> None:
    payload = SAMPLES["llamacpp"]
    assert normalize(payload, provider="llama.cpp").provider == "llamacpp"
    assert normalize(SAMPLES["openai_chat"], provider="openai").provider == "openai_chat"
    with pytest.raises(NormalizeError, match="unknown provider 'bogus'") as info:
        normalize(payload, provider="bogus")
    assert info.value.path == "provider"
    with pytest.raises(NormalizeError, match="looks like gemini"):
        normalize(SAMPLES["gemini"], provider="openai")


def test_explicit_provider_that_does_not_fit_names_the_missing_field() -> None:
    with pytest.raises(NormalizeError) as info:
        normalize(SAMPLES["openai_chat"], provider="tgi")
    assert info.value.path == "generated_text"


def test_mixed_providers_in_one_stream() -> None:
    chunks = [chat_chunk(0, "A", [chat_entry("A", -0.1)]), SAMPLES["gemini"]]
    with pytest.raises(NormalizeError, match="mixed providers") as info:
        normalize(chunks)
    assert info.value.path == "[1]" and "gemini" in str(info.value)


def test_chat_and_completion_chunks_do_not_mix() -> None:
    comp_chunk = {
        "object": "text_completion",
        "choices": [{"text": "B", "index": 0, "logprobs": None, "finish_reason": None}],
    }
    with pytest.raises(NormalizeError, match="openai_completions"):
        normalize([chat_chunk(0, "A", [chat_entry("A", -0.1)]), comp_chunk])


@pytest.mark.parametrize(
    "text",
    [
        '{"choices": [{"message": {"content": "Hi"}, "logprobs": {"content": [{"token": "Hi"',
        '{"choices": [',
    ],
)
def test_truncated_json(text: str) -> None:
    with pytest.raises(NormalizeError, match=r"invalid JSON at line 1 column \d+.*truncated"):
        normalize(text)


def test_wrong_types_name_the_field_path() -> None:
    payload = chat_response(
        [
            chat_entry("a", -0.1),
            chat_entry("b", -0.2),
            chat_entry("c", -0.3),
            chat_entry("d", -0.4),
        ],
        "abcd",
    )
    payload["choices"][0]["logprobs"]["content"][3]["logprob"] = "-0.4"
    with pytest.raises(NormalizeError) as info:
        normalize(payload)
    assert info.value.path == "choices[0].logprobs.content[3].logprob"
    assert "expected a number, got the string '-0.4'" in str(info.value)


@pytest.mark.parametrize(
    ("mutate", "path"),
    [
        (lambda p: p["choices"][0]["logprobs"].update(content="x"), "choices[0].logprobs.content"),
        (
            lambda p: p["choices"][0]["logprobs"]["content"][0].update(bytes=[72, 300]),
            "choices[0].logprobs.content[0].bytes[1]",
        ),
        (
            lambda p: p["choices"][0]["logprobs"]["content"][0].update(
                top_logprobs=[{"token": 1, "logprob": -1}]
            ),
            "choices[0].logprobs.content[0].top_logprobs[0].token",
        ),
        (
            lambda p: p["choices"][0]["logprobs"]["content"][0].pop("token"),
            "choices[0].logprobs.content[0].token",
        ),
        (lambda p: p["choices"][0].update(message=[]), "choices[0].message"),
    ],
)
def test_more_wrong_types(mutate, path: str) -> None:  # type: ignore[no-untyped-def]
    payload = chat_response([chat_entry("Hi", -0.1)], "Hi")
    mutate(payload)
    with pytest.raises(NormalizeError) as info:
        normalize(payload)
    assert info.value.path == path


def test_empty_choices_is_never_a_silent_empty_result() -> None:
    payload = chat_response([chat_entry("Hi", -0.1)], "Hi")
    payload["choices"] = []
    with pytest.raises(NormalizeError, match="no choices") as info:
        normalize(payload)
    assert info.value.path == "choices"
    with pytest.raises(NormalizeError, match="no choices") as info:
        normalize([{"object": "chat.completion.chunk", "choices": []}])
    assert info.value.path == "[*].choices"
    with pytest.raises(NormalizeError, match="no chunk in the stream has any choices"):
        normalize([{"choices": []}, {"choices": [], "usage": {"prompt_tokens": 1}}])


@pytest.mark.parametrize("payload", [[], {}, 42, "   ", "null", '"text"'])
def test_nothing_to_read(payload: object) -> None:
    with pytest.raises(NormalizeError):
        normalize(payload)


def test_error_payload_is_reported_as_such() -> None:
    err = {
        "error": {
            "message": "Invalid 'top_logprobs'",
            "type": "invalid_request_error",
            "param": "top_logprobs",
            "code": None,
        }
    }
    with pytest.raises(NormalizeError, match="error response: Invalid 'top_logprobs'") as info:
        normalize(err)
    assert info.value.path == "error"


def test_nan_and_infinity_from_broken_servers() -> None:
    # pain point 5: -inf cannot be JSON, but Python's json reads -Infinity/NaN if a server sends
    text = json.dumps(chat_response([chat_entry("a", -1.0)], "a")).replace("-1.0", "-Infinity")
    r = normalize_with_notes(text)
    assert r.completion.tokens[0].logprob == -9999.0 and any("-Infinity" in n for n in r.notes)
    with pytest.raises(NormalizeError, match="NaN") as info:
        normalize(text.replace("-Infinity", "NaN"))
    assert info.value.path == "choices[0].logprobs.content[0].logprob"


def test_sse_text_with_done_and_comments() -> None:
    chunks = [chat_chunk(0, "A", [chat_entry("A", -0.1)]), chat_chunk(0, None, None, finish="stop")]
    sse = (
        ": keep-alive\n\n"
        + "".join(f"data: {json.dumps(c)}\n\n" for c in chunks)
        + "data: [DONE]\n\n"
    )
    assert load_payload(sse) == chunks
    assert normalize(sse).text == "A"


def test_sse_data_lines_without_blank_separators() -> None:
    chunks = [
        chat_chunk(0, "A", [chat_entry("A", -0.1)]),
        chat_chunk(0, "B", [chat_entry("B", -0.2)]),
    ]
    sse = "".join(f"data: {json.dumps(c)}\n" for c in chunks)
    assert normalize(sse).text == "AB"


def test_sse_event_lines_and_crlf() -> None:
    text = 'event: message\r\ndata: {"a":\r\ndata: 1}\r\n\r\n'
    events = list(iter_sse(text.splitlines(keepends=True)))
    assert [(e.event, e.data) for e in events] == [("message", '{"a":\n1}')]
    assert load_payload(text) == [{"a": 1}]


def test_bad_json_inside_sse_names_the_line() -> None:
    sse = 'data: {"ok": 1}\n\ndata: {"broken": \n\n'
    with pytest.raises(NormalizeError, match="line 3"):
        load_payload(sse)


def test_jsonl_bad_line_is_named() -> None:
    with pytest.raises(NormalizeError, match="line 2"):
        load_payload('{"a": 1}\n{"a": \n')


def test_non_utf8_bytes() -> None:
    with pytest.raises(NormalizeError, match="not UTF-8"):
        normalize(b"\xff\xfe{}")


def test_unrecognized_shape_lists_keys_and_providers() -> None:
    with pytest.raises(NormalizeError, match="unrecognized payload shape.*foo") as info:
        normalize({"foo": 1})
    assert "provider=" in str(info.value)


def test_public_api_is_exported_and_sorted() -> None:
    import importlib

    # `import logprobe.normalize as pkg` would bind the function logprobe.normalize, which
    # shadows the subpackage's attribute on purpose; the subpackage itself is in sys.modules
    pkg = importlib.import_module("logprobe.normalize")

    assert all(hasattr(pkg, name) for name in pkg.__all__)
    # isort-style: CONSTANTS, then Classes, then functions
    order = sorted(pkg.__all__, key=lambda s: (0 if s.isupper() else 1 if s[0].isupper() else 2, s))
    assert pkg.__all__ == order
