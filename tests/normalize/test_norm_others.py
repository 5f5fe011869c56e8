"""Ollama, Together, Gemini and Anthropic shapes -> neutral Completion (or a clear refusal)."""

from __future__ import annotations

import json

import pytest
from norm_fixtures import (
    ANTHROPIC_MESSAGE,
    chat_entry,
    gem_cand,
    gemini_response,
    ollama_generate,
)

from logprobe import NoLogprobsError, NormalizeError
from logprobe.normalize import normalize, normalize_with_notes

# ── Ollama ───────────────────────────────────────────────────────────────────────────────────


def test_ollama_generate_with_alternatives() -> None:
    payload = ollama_generate(
        "Hi!", [chat_entry("Hi", -0.2, [("Hi", -0.2), ("Hello", -1.9)]), chat_entry("!", -0.4)]
    )
    comp = normalize(payload)
    assert comp.provider == "ollama" and comp.text == "Hi!" and comp.model == "llama3.2"
    assert [t.rank for t in comp.tokens] == [1, None]
    assert (comp.usage.prompt_tokens, comp.usage.completion_tokens) == (8, 3)
    assert comp.created == 1763632800 and comp.choice.finish_reason == "stop"


def test_ollama_replacement_char_loses_bytes_honestly() -> None:
    # pain point 2: "é" split over two tokens comes back as two U+FFFD tokens, bytes [239,191,189]
    lost = [
        chat_entry("\ufffd", -0.3, raw=[239, 191, 189]),
        chat_entry("\ufffd", -0.01, raw=[239, 191, 189]),
    ]
    r = normalize_with_notes(ollama_generate("é", lost))
    assert [t.bytes for t in r.completion.tokens] == [None, None]
    assert r.completion.text == "é"  # the text field itself is intact
    assert any("U+FFFD" in n and "2 places" in n for n in r.notes)


def test_ollama_chat_stream_ndjson_text() -> None:
    lines = [
        {
            "model": "llama3.2",
            "created_at": "2025-11-20T10:00:00Z",
            "message": {"role": "assistant", "content": "Hel"},
            "done": False,
            "logprobs": [chat_entry("Hel", -0.5)],
        },
        {
            "model": "llama3.2",
            "created_at": "2025-11-20T10:00:00Z",
            "message": {"role": "assistant", "content": "lo"},
            "done": False,
            "logprobs": [chat_entry("lo", -0.1)],
        },
        {
            "model": "llama3.2",
            "created_at": "2025-11-20T10:00:01Z",
            "message": {"role": "assistant", "content": ""},
            "done": True,
            "done_reason": "length",
            "prompt_eval_count": 5,
            "eval_count": 2,
        },
    ]
    comp = normalize("\n".join(json.dumps(x) for x in lines))
    assert comp.text == "Hello" and len(comp.tokens) == 2
    assert comp.choice.finish_reason == "length"


def test_ollama_without_logprobs_names_the_version() -> None:
    with pytest.raises(NoLogprobsError, match="0.12.11"):
        normalize(ollama_generate("Hi", None))


# ── Together ─────────────────────────────────────────────────────────────────────────────────


def test_together_chat_parallel_arrays() -> None:
    # Together's docs example: chat.completion with "prompt": [] and choice logprobs
    # {tokens, token_logprobs} next to message
    payload = {
        "id": "85d3d3ff1a0d8c57-EWR",
        "object": "chat.completion",
        "created": 1709240335,
        "model": "codellama/CodeLlama-70b-Instruct-hf",
        "prompt": [],
        "choices": [
            {
                "finish_reason": "length",
                "index": 0,
                "logprobs": {
                    "tokens": ["1", ".", " Define"],
                    "token_logprobs": [-1.0029297, -0.07861328, -2.1367188],
                },
                "message": {"role": "assistant", "content": "1. Define"},
            }
        ],
        "usage": {"prompt_tokens": 33, "completion_tokens": 3, "total_tokens": 36},
    }
    comp = normalize(payload)
    assert comp.provider == "together" and comp.text == "1. Define"
    assert [t.logprob for t in comp.tokens] == [-1.0029297, -0.07861328, -2.1367188]


def test_together_completion_echo_prompt_and_token_ids() -> None:
    payload = {
        "id": "x",
        "object": "text.completion",
        "model": "m",
        "prompt": [
            {
                "text": "Hi there",
                "logprobs": {
                    "tokens": ["Hi", " there"],
                    "token_ids": [10, 11],
                    "token_logprobs": [None, -3.1],
                },
            }
        ],
        "choices": [
            {
                "text": "!",
                "index": 0,
                "finish_reason": "length",
                "logprobs": {
                    "token_ids": [12],
                    "tokens": ["!"],
                    "token_logprobs": [-0.4],
                    "top_logprobs": [{"!": -0.4, ".": -1.3}],
                },
            }
        ],
    }
    comp = normalize(payload)
    c = comp.choice
    assert c.prompt_tokens is not None and [t.id for t in c.prompt_tokens] == [10, 11]
    assert c.prompt_tokens[0].logprob is None
    assert (c.tokens[0].id, c.tokens[0].rank) == (12, 1)


# ── Gemini ───────────────────────────────────────────────────────────────────────────────────


def test_gemini_chosen_missing_from_top_list() -> None:
    payload = gemini_response(
        "Hi!",
        [gem_cand("Hi", -0.9, 101), gem_cand("!", -0.2, 102)],
        [
            [gem_cand("Hello", -0.5, 100), gem_cand("Hey", -0.8, 103)],  # "Hi" not listed
            [gem_cand("!", -0.2, 102), gem_cand(".", -1.9, 104)],
        ],
    )
    r = normalize_with_notes(payload)
    hi, bang = r.completion.tokens
    assert hi.rank is None and [a.token for a in hi.top_logprobs] == ["Hello", "Hey"]
    assert bang.rank == 1 and bang.id == 102
    assert r.completion.provider == "gemini" and r.completion.model == "gemini-2.0-flash"
    assert any("missing from its topCandidates" in n for n in r.notes)


def test_gemini_proto3_omitted_zero_logprob() -> None:
    payload = gemini_response("A", [gem_cand("A", None)], [[gem_cand("A", None)]])
    r = normalize_with_notes(payload)
    assert r.completion.tokens[0].logprob == 0.0 and r.completion.tokens[0].rank == 1
    assert any("proto3" in n for n in r.notes)


def test_gemini_stream_chunks_and_finish() -> None:
    a = gemini_response("Hel", [gem_cand("Hel", -0.5)], None, finish="STOP")
    del a["candidates"][0]["finishReason"]
    b = gemini_response("lo", [gem_cand("lo", -0.1)], None, finish="MAX_TOKENS")
    comp = normalize([a, b])
    assert comp.text == "Hello" and comp.choice.finish_reason == "length"


def test_gemini_without_response_logprobs_says_how() -> None:
    payload = gemini_response("Hi", [], None)
    del payload["candidates"][0]["logprobsResult"]
    with pytest.raises(NoLogprobsError, match="responseLogprobs"):
        normalize(payload)


def test_gemini_blocked_prompt_is_named() -> None:
    with pytest.raises(NormalizeError, match="SAFETY"):
        normalize({"promptFeedback": {"blockReason": "SAFETY"}, "usageMetadata": {}})


def test_gemini_top_list_count_must_match() -> None:
    payload = gemini_response(
        "ab", [gem_cand("a", -0.1), gem_cand("b", -0.1)], [[gem_cand("a", -0.1)]]
    )
    with pytest.raises(NormalizeError) as info:
        normalize(payload)
    assert info.value.path == "candidates[0].logprobsResult.topCandidates"


# ── Anthropic ────────────────────────────────────────────────────────────────────────────────


def test_anthropic_message_says_no_logprobs_exist() -> None:
    with pytest.raises(NoLogprobsError, match="no token logprobs"):
        normalize(ANTHROPIC_MESSAGE)


def test_anthropic_stream_events_too() -> None:
    events = [
        {"type": "message_start", "message": {**ANTHROPIC_MESSAGE, "content": []}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Hi"}},
        {"type": "message_stop"},
    ]
    with pytest.raises(NoLogprobsError, match="Anthropic"):
        normalize(events)
