"""OpenAI chat, legacy completions and Responses shapes -> the neutral Completion."""

from __future__ import annotations

import json

import pytest
from norm_fixtures import (
    chat_chunk,
    chat_entry,
    chat_response,
    completion_response,
    responses_delta,
    responses_object,
    utf8,
)

from logprobe import Completion, NoLogprobsError, NormalizeError
from logprobe.normalize import normalize, normalize_with_notes

# ── chat ─────────────────────────────────────────────────────────────────────────────────────


def test_chat_tokens_alternatives_rank_and_usage() -> None:
    # the wire doc's own example entry ("Hello" -0.3172 with "Hi" -1.3190)
    entries = [
        chat_entry("Hello", -0.3172, [("Hello", -0.3172), ("Hi", -1.3190)]),
        chat_entry("!", -0.05, [("!", -0.05), (".", -3.2)]),
    ]
    comp = normalize(chat_response(entries, "Hello!"))
    assert comp.provider == "openai_chat"
    assert comp.text == "Hello!" and comp.model == "gpt-4o-mini" and comp.id == "chatcmpl-123"
    t0 = comp.tokens[0]
    assert (t0.token, t0.bytes, t0.logprob, t0.rank) == ("Hello", b"Hello", -0.3172, 1)
    assert [(a.token, a.logprob) for a in t0.top_logprobs] == [("Hello", -0.3172), ("Hi", -1.319)]
    assert comp.usage.prompt_tokens == 9 and comp.usage.completion_tokens == 2
    assert comp.choice.finish_reason == "stop"


def test_chat_rank_counts_more_likely_alternatives() -> None:
    entries = [chat_entry(" cat", -1.5, [(" dog", -0.4), (" the", -1.1), (" cat", -1.5)])]
    assert normalize(chat_response(entries, " cat")).tokens[0].rank == 3


def test_partial_utf8_bytes_kept_exactly() -> None:
    # "é" split over two tokens: each has a partial byte list, token strings cannot show it
    e1 = chat_entry("\\xc3", -0.2, raw=[0xC3])
    e2 = chat_entry("\\xa9", -0.1, raw=[0xA9])
    comp = normalize(chat_response([e1, e2], "é"))
    assert [t.bytes for t in comp.tokens] == [b"\xc3", b"\xa9"]
    assert b"".join(t.bytes or b"" for t in comp.tokens).decode() == "é"


def test_minus_9999_stays_and_below_clamps() -> None:
    entries = [chat_entry("a", -9999.0), chat_entry("b", -12345.0)]
    r = normalize_with_notes(chat_response(entries, "ab"))
    assert [t.logprob for t in r.completion.tokens] == [-9999.0, -9999.0]
    assert any("clamped" in n for n in r.notes)


def test_missing_bytes_derived_from_token_string() -> None:
    e = chat_entry("Hi", -0.1)
    e["bytes"] = None
    assert normalize(chat_response([e], "Hi")).tokens[0].bytes == b"Hi"


def test_logprobs_not_requested_raises_with_how_to() -> None:
    with pytest.raises(NoLogprobsError, match='"logprobs": true') as info:
        normalize(chat_response(None, "Hello"))
    assert info.value.path == "choices[0].logprobs"


def test_text_with_zero_entries_is_not_silently_empty() -> None:
    with pytest.raises(NoLogprobsError, match="zero token logprobs"):
        normalize(chat_response([], "Hello"))


def test_empty_answer_with_empty_entries_is_fine() -> None:
    comp = normalize(chat_response([], ""))
    assert comp.text == "" and comp.tokens == ()


def test_n_choices_each_keep_their_tokens() -> None:
    payload = chat_response([chat_entry("A", -0.1)], "A", n=2)
    payload["choices"][1]["message"]["content"] = "B"
    payload["choices"][1]["logprobs"]["content"] = [chat_entry("B", -2.0)]
    comp = normalize(payload)
    assert [(c.index, c.text, c.tokens[0].token) for c in comp.choices] == [
        (0, "A", "A"),
        (1, "B", "B"),
    ]


def test_refusal_tokens_used_when_content_is_null() -> None:
    payload = chat_response(None, "")
    payload["choices"][0]["message"] = {"role": "assistant", "content": None, "refusal": "No."}
    payload["choices"][0]["logprobs"] = {
        "content": None,
        "refusal": [chat_entry("No", -0.1), chat_entry(".", -0.2)],
    }
    r = normalize_with_notes(payload)
    assert r.completion.text == "No." and len(r.completion.tokens) == 2
    assert any("refused" in n for n in r.notes)


def test_chat_stream_chunks_assemble_per_choice() -> None:
    chunks = [
        {
            "id": "chatcmpl-123",
            "object": "chat.completion.chunk",
            "model": "m",
            "choices": [
                {
                    "index": 0,
                    "delta": {"role": "assistant"},
                    "logprobs": None,
                    "finish_reason": None,
                }
            ],
        },
        chat_chunk(0, "Hel", [chat_entry("Hel", -0.5, [("Hel", -0.5)])]),
        chat_chunk(0, "lo", [chat_entry("lo", -0.25, [("lo", -0.25)])]),
        chat_chunk(0, None, None, finish="length"),
        # stream_options.include_usage tail: empty choices, usage only (OpenAI streaming docs)
        {
            "id": "chatcmpl-123",
            "object": "chat.completion.chunk",
            "choices": [],
            "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5},
        },
    ]
    comp = normalize(chunks)
    assert comp.text == "Hello" and [t.token for t in comp.tokens] == ["Hel", "lo"]
    assert comp.choice.finish_reason == "length" and comp.usage.prompt_tokens == 3
    assert comp.provider == "openai_chat"


def test_stream_dropping_logprobs_midway_is_an_error() -> None:
    # pain point 4: logprobs silently dropped when streaming
    chunks = [chat_chunk(0, "A", [chat_entry("A", -0.1)]), chat_chunk(0, "B", None)]
    with pytest.raises(NormalizeError, match="dropped logprobs") as info:
        normalize(chunks)
    assert info.value.path == "[1].choices[0].logprobs"


def test_stream_without_any_logprobs_says_how_to_request() -> None:
    with pytest.raises(NoLogprobsError, match="logprobs"):
        normalize([chat_chunk(0, "A", None), chat_chunk(0, None, None, finish="stop")])


def test_multi_token_chunk_repeating_first_alternatives_is_detected() -> None:
    # pain point 7 (SGLang): every token of a chunk got the first token's alternatives
    tops = [("The", -0.1), ("A", -2.5)]
    chunk = chat_chunk(
        0, "The cat", [chat_entry("The", -0.1, tops), chat_entry(" cat", -1.2, tops)]
    )
    r = normalize_with_notes([chunk])
    first, second = r.completion.tokens
    assert first.rank == 1 and len(first.top_logprobs) == 2
    assert second.top_logprobs == () and second.rank is None
    assert any("repeats its first token's alternatives" in n for n in r.notes)


def test_streams_of_different_responses_are_rejected() -> None:
    chunks = [
        chat_chunk(0, "A", [chat_entry("A", -0.1)]),
        chat_chunk(0, "B", [chat_entry("B", -0.1)], rid="chatcmpl-other"),
    ]
    with pytest.raises(NormalizeError, match="different responses") as info:
        normalize(chunks)
    assert info.value.path == "[1].id"


# ── legacy completions ───────────────────────────────────────────────────────────────────────


def _echo_payload() -> dict:
    # wire doc example values (" goal" -10.03, {",": -3.72, "-": -2.63}, text_offset 4)
    return completion_response(
        "My goal is",
        ["My", " goal", " is"],
        [None, -10.03, -0.9],
        [None, {",": -3.72, "-": -2.63, " goal": -10.03}, {" is": -0.9, ",": -1.7}],
        [0, 2, 7],
        usage=(2, 1),
    )


def test_completions_echo_prompt_tokens_split_off() -> None:
    comp = normalize(_echo_payload())
    c = comp.choice
    assert comp.provider == "openai_completions"
    assert c.prompt_tokens is not None and [t.token for t in c.prompt_tokens] == ["My", " goal"]
    assert c.prompt_tokens[0].logprob is None and c.prompt_tokens[0].top_logprobs == ()
    assert c.text == " is" and [t.token for t in c.tokens] == [" is"]
    # " goal" is the sampled-token extra entry at the bottom of its list: rank unknown
    assert c.prompt_tokens[1].rank is None
    assert c.tokens[0].rank == 1
    assert [a.token for a in c.prompt_tokens[1].top_logprobs] == ["-", ",", " goal"]


def test_completions_echo_without_usage_keeps_tokens_together_with_a_note() -> None:
    payload = _echo_payload()
    del payload["usage"]
    r = normalize_with_notes(payload)
    assert len(r.completion.tokens) == 3 and r.completion.choice.prompt_tokens is None
    assert any("usage.prompt_tokens is missing" in n for n in r.notes)


def test_completions_bytes_spelling_of_partial_utf8() -> None:
    # OpenAI spells tokens holding part of a character as "bytes:\xNN"
    payload = completion_response(
        "é!",
        ["bytes:\\xc3", "bytes:\\xa9", "!"],
        [-0.5, -0.1, -0.2],
        [{"bytes:\\xc3": -0.5}, {"bytes:\\xa9": -0.1}, {"!": -0.2, "?": -2.0}],
        [0, 0, 1],
        usage=(3, 3),
    )
    comp = normalize(payload)
    assert [t.bytes for t in comp.tokens] == [b"\xc3", b"\xa9", b"!"]
    assert comp.tokens[0].top_logprobs[0].bytes == b"\xc3"
    # a one-entry list when others hold two (k=2... or k=1 plus the sampled extra) means
    # the token is inside the top k: rank 1
    assert comp.tokens[0].rank == 1


def test_completions_rank_unknown_when_every_list_has_one_entry() -> None:
    # logprobs=0 also gives one entry (the sampled token) per position: no rank is derivable
    payload = completion_response(
        "ab", ["a", "b"], [-3.0, -4.0], [{"a": -3.0}, {"b": -4.0}], [0, 1], usage=(2, 2)
    )
    assert [t.rank for t in normalize(payload).tokens] == [None, None]


def test_completions_literal_bytes_prefix_is_not_misread() -> None:
    payload = completion_response("bytes:abc", ["bytes:abc"], [-1.0], [None], [0], (1, 1))
    assert normalize(payload).tokens[0].bytes == b"bytes:abc"


def test_completions_parallel_arrays_must_match() -> None:
    payload = _echo_payload()
    payload["choices"][0]["logprobs"]["token_logprobs"].pop()
    with pytest.raises(NormalizeError) as info:
        normalize(payload)
    assert info.value.path == "choices[0].logprobs.token_logprobs"
    assert "has 2 entries but tokens has 3" in str(info.value)


def test_completions_stream_with_usage_tail() -> None:
    def chunk(text: str, tok: str, lp: float) -> dict:
        return {
            "id": "cmpl-1",
            "object": "text_completion",
            "model": "m",
            "choices": [
                {
                    "text": text,
                    "index": 0,
                    "finish_reason": None,
                    "logprobs": {
                        "tokens": [tok],
                        "token_logprobs": [lp],
                        "top_logprobs": [{tok: lp}],
                        "text_offset": [0],
                    },
                }
            ],
        }

    chunks = [
        chunk(" Paris", " Paris", -0.26),
        chunk(".", ".", -0.37),
        {
            "id": "cmpl-1",
            "object": "text_completion",
            "choices": [{"text": "", "index": 0, "logprobs": None, "finish_reason": "length"}],
        },
    ]
    comp = normalize(chunks)
    assert comp.text == " Paris." and [t.logprob for t in comp.tokens] == [-0.26, -0.37]
    assert comp.choice.finish_reason == "length"


# ── Responses API ────────────────────────────────────────────────────────────────────────────


def _resp_entry(token: str, lp: float, bytes_: bool = True) -> dict:
    e = {"token": token, "logprob": lp, "top_logprobs": [{"token": token, "logprob": lp}]}
    if bytes_:
        e["bytes"] = utf8(token)
    return e


def test_responses_object_skips_reasoning_and_joins_parts() -> None:
    payload = responses_object(
        [("Hi", [_resp_entry("Hi", -0.1)]), (" there", [_resp_entry(" there", -0.3)])]
    )
    comp = normalize(payload)
    assert comp.provider == "openai_responses" and comp.text == "Hi there"
    assert [t.logprob for t in comp.tokens] == [-0.1, -0.3]
    assert comp.usage.prompt_tokens == 7 and comp.choice.finish_reason == "stop"


def test_responses_without_include_raises_with_include_hint() -> None:
    with pytest.raises(NoLogprobsError, match="message.output_text.logprobs"):
        normalize(responses_object([("Hi", None)]))


def test_responses_stream_deltas_without_bytes() -> None:
    events = [
        {
            "type": "response.created",
            "sequence_number": 0,
            "response": {**responses_object([]), "status": "in_progress", "output": []},
        },
        responses_delta(1, "Hel", [_resp_entry("Hel", -0.5, bytes_=False)]),
        responses_delta(2, "lo", [_resp_entry("lo", -0.2, bytes_=False)]),
        {
            "type": "response.output_text.done",
            "sequence_number": 3,
            "item_id": "msg_1",
            "output_index": 1,
            "content_index": 0,
            "text": "Hello",
            "logprobs": [_resp_entry("Hel", -0.5, False), _resp_entry("lo", -0.2, False)],
        },
        {
            "type": "response.completed",
            "sequence_number": 4,
            "response": responses_object(
                [("Hello", [_resp_entry("Hel", -0.5), _resp_entry("lo", -0.2)])]
            ),
        },
    ]
    comp = normalize(events)
    assert comp.text == "Hello" and [t.bytes for t in comp.tokens] == [b"Hel", b"lo"]
    assert comp.id == "resp_1" and comp.choice.finish_reason == "stop"


def test_responses_stream_failed_event_is_an_error() -> None:
    failed = {
        **responses_object([]),
        "status": "failed",
        "error": {"code": "server_error", "message": "boom"},
    }
    with pytest.raises(NormalizeError, match="boom"):
        normalize([{"type": "response.failed", "sequence_number": 0, "response": failed}])


def test_json_text_and_dict_give_the_same_completion() -> None:
    payload = chat_response([chat_entry("Hi", -0.1)], "Hi")
    assert normalize(json.dumps(payload)) == normalize(payload)
    assert isinstance(normalize(json.dumps(payload).encode()), Completion)


def test_tokens_that_do_not_spell_the_text_are_noted() -> None:
    r = normalize_with_notes(chat_response([chat_entry("Hel", -0.1)], "Hello"))
    assert any("do not rebuild the choice text" in n for n in r.notes)
    assert normalize_with_notes(chat_response([chat_entry("Hello", -0.1)], "Hello")).notes == ()
