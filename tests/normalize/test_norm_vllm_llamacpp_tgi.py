"""vLLM extensions, llama.cpp's native /completion and TGI's details -> neutral Completion."""

from __future__ import annotations

import math

import pytest
from norm_fixtures import (
    chat_entry,
    chat_response,
    completion_response,
    lcpp_post_sampling,
    lcpp_prob,
    lcpp_response,
    tgi_response,
    tgi_token,
    utf8,
)

from logprobe import NoLogprobsError, NormalizeError
from logprobe.normalize import detect_provider, normalize, normalize_with_notes

# ── vLLM ─────────────────────────────────────────────────────────────────────────────────────
# Source: wire doc "vLLM": prompt_logprobs [null, {token_id: {logprob, rank, decoded_token}}],
# return_tokens_as_token_ids -> "token_id:123"; bytes = token.encode(errors="replace");
# clamps at -9999.0. Choices carry vLLM's "stop_reason".


def _vllm_chat() -> dict:
    payload = chat_response(
        [chat_entry(" Paris", -0.26, [(" Paris", -0.26), (" the", -2.8)])], " Paris"
    )
    payload["choices"][0]["stop_reason"] = None
    payload["prompt_logprobs"] = [
        None,
        {
            "3575": {"logprob": -9.6, "rank": 812, "decoded_token": " capital"},
            "282": {"logprob": -0.41, "rank": 1, "decoded_token": " of"},
        },
        {
            "282": {"logprob": -0.02, "rank": 1, "decoded_token": " of"},
            "4649": {"logprob": -4.5, "rank": 2, "decoded_token": " France"},
        },
    ]
    return payload


def test_vllm_detected_and_prompt_logprobs_become_prompt_tokens() -> None:
    payload = _vllm_chat()
    assert detect_provider(payload) == "vllm"
    comp = normalize(payload)
    assert comp.provider == "vllm"
    pt = comp.choice.prompt_tokens
    assert pt is not None and len(pt) == 3
    assert pt[0].logprob is None and pt[0].bytes is None  # vLLM gives no text for token 0
    # first key = the prompt token itself; outside the listed top (rank 812): not an alternative
    assert (pt[1].token, pt[1].id, pt[1].logprob, pt[1].rank) == (" capital", 3575, -9.6, 812)
    assert [a.token for a in pt[1].top_logprobs] == [" of"]
    # inside the top: it is listed among the alternatives, rank 1
    assert (pt[2].token, pt[2].rank) == (" of", 1)
    assert [a.id for a in pt[2].top_logprobs] == [282, 4649]
    assert comp.tokens[0].logprob == -0.26


def test_vllm_prompt_token_ids_choose_the_actual_token() -> None:
    payload = _vllm_chat()
    payload["prompt_token_ids"] = [504, 282, 4649]  # position 2's actual token is " France"
    pt = normalize(payload).choice.prompt_tokens
    assert pt is not None and pt[2].id == 4649 and pt[2].rank == 2 and pt[0].id == 504


def test_vllm_prompt_token_id_not_in_entry_is_an_error() -> None:
    payload = _vllm_chat()
    payload["prompt_token_ids"] = [504, 9, 4649]
    with pytest.raises(NormalizeError) as info:
        normalize(payload)
    assert info.value.path == "prompt_logprobs[1]"


def test_vllm_completions_per_choice_prompt_logprobs_and_token_ids() -> None:
    payload = completion_response(
        "x",
        ["token_id:87"],
        [-0.7],
        [{"token_id:87": -0.7, "token_id:12": -1.0}],
        [0],
        usage=(2, 1),
    )
    payload["choices"][0]["stop_reason"] = None
    payload["choices"][0]["prompt_logprobs"] = [
        None,
        {"5": {"logprob": -3.0, "rank": 4, "decoded_token": "b"}},
    ]
    r = normalize_with_notes(payload)
    tok = r.completion.tokens[0]
    assert r.provider == "vllm"
    assert (tok.id, tok.bytes, tok.token) == (87, None, "token_id:87")
    assert [a.id for a in tok.top_logprobs] == [87, 12] and tok.rank == 1
    assert r.completion.choice.prompt_tokens[1].logprob == -3.0  # type: ignore[index]
    assert any("token_id:N" in n for n in r.notes)


def test_vllm_replacement_char_bytes_are_recorded_unknown() -> None:
    # pain point 2: vLLM returns U+FFFD (and its bytes) for partial UTF-8 alternatives
    entry = chat_entry("\ufffd", -1.0, raw=[239, 191, 189])
    entry["top_logprobs"] = [{"token": "\ufffd", "logprob": -1.0, "bytes": [239, 191, 189]}]
    payload = chat_response([entry], "é")
    payload["choices"][0]["stop_reason"] = None
    r = normalize_with_notes(payload)
    assert r.completion.tokens[0].bytes is None
    assert r.completion.tokens[0].top_logprobs[0].bytes is None
    assert any("lost a partial UTF-8" in n for n in r.notes)


def test_raw_logits_in_logprob_field_are_refused() -> None:
    payload = chat_response([chat_entry("a", 12.5)], "a")
    payload["choices"][0]["stop_reason"] = None
    with pytest.raises(NormalizeError, match="raw_logits") as info:
        normalize(payload)
    assert info.value.path == "choices[0].logprobs.content[0].logprob"


# ── llama.cpp native ─────────────────────────────────────────────────────────────────────────


def test_llamacpp_native_logprobs_with_ids() -> None:
    payload = lcpp_response(
        " Paris.",
        [
            lcpp_prob(7042, " Paris", -0.26, [(7042, " Paris", -0.26), (260, " the", -2.8)]),
            lcpp_prob(30, ".", -0.4, [(30, ".", -0.4), (28, ",", -1.5)]),
        ],
    )
    comp = normalize(payload)
    assert comp.provider == "llamacpp" and comp.logprob_mode == "raw"
    assert [(t.id, t.token, t.rank) for t in comp.tokens] == [(7042, " Paris", 1), (30, ".", 1)]
    assert comp.usage.prompt_tokens == 6 and comp.choice.finish_reason == "length"


def test_llamacpp_post_sampling_probs_become_processed_logprobs() -> None:
    payload = lcpp_response(
        " Paris",
        [
            lcpp_post_sampling(
                7042, " Paris", 0.8, [(7042, " Paris", 0.8), (260, " the", 0.2), (9, " a", 0.0)]
            ),
        ],
        stop_type="eos",
    )
    r = normalize_with_notes(payload)
    tok = r.completion.tokens[0]
    assert r.completion.logprob_mode == "processed"
    assert math.isclose(tok.logprob or 0, math.log(0.8))
    assert tok.top_logprobs[2].logprob == -9999.0  # probability 0 after the sampler chain
    assert r.completion.choice.finish_reason == "stop"


def test_llamacpp_probability_out_of_range_is_an_error() -> None:
    payload = lcpp_response("x", [lcpp_post_sampling(1, "x", 1.7, [])])
    with pytest.raises(NormalizeError) as info:
        normalize(payload)
    assert info.value.path == "completion_probabilities[0].prob"


def test_llamacpp_stream_chunks() -> None:
    chunks = [
        {
            "index": 0,
            "content": " Pa",
            "stop": False,
            "completion_probabilities": [lcpp_prob(1, " Pa", -0.5, [])],
        },
        {
            "index": 0,
            "content": "ris",
            "stop": False,
            "completion_probabilities": [lcpp_prob(2, "ris", -0.01, [])],
        },
        {
            "index": 0,
            "content": "",
            "stop": True,
            "stop_type": "limit",
            "tokens_predicted": 2,
            "tokens_evaluated": 5,
            "model": "smollm2",
        },
    ]
    comp = normalize(chunks)
    assert comp.text == " Paris" and [t.id for t in comp.tokens] == [1, 2]
    assert comp.usage.completion_tokens == 2


def test_llamacpp_legacy_probs_shape() -> None:
    payload = {
        "content": " Paris",
        "stop": True,
        "tokens_predicted": 1,
        "completion_probabilities": [
            {
                "content": " Paris",
                "probs": [{"tok_str": " Paris", "prob": 0.7}, {"tok_str": " the", "prob": 0.2}],
            }
        ],
    }
    comp = normalize(payload)
    assert comp.logprob_mode == "processed"
    assert math.isclose(comp.tokens[0].logprob or 0, math.log(0.7)) and comp.tokens[0].rank == 1


def test_llamacpp_without_n_probs_says_how() -> None:
    with pytest.raises(NoLogprobsError, match="n_probs"):
        normalize({"content": "Hi", "stop": True, "tokens_predicted": 1})


# ── TGI ──────────────────────────────────────────────────────────────────────────────────────


def test_tgi_details_prefill_top_tokens() -> None:
    payload = tgi_response(
        " Paris",
        [tgi_token(7042, " Paris", -0.26), tgi_token(2, "</s>", -0.1, special=True)],
        [
            [tgi_token(7042, " Paris", -0.26), tgi_token(260, " the", -2.8)],
            [tgi_token(2, "</s>", -0.1)],
        ],
        [tgi_token(1, "<s>", None), tgi_token(504, "The", -7.5)],
        finish="eos_token",
    )
    r = normalize_with_notes(payload)
    comp = r.completion
    assert comp.provider == "tgi" and comp.text == " Paris"
    assert comp.choice.prompt_tokens is not None
    assert [t.logprob for t in comp.choice.prompt_tokens] == [None, -7.5]
    assert comp.tokens[0].rank == 1 and comp.tokens[0].id == 7042
    assert comp.tokens[1].bytes == b"" and comp.choice.finish_reason == "stop"
    assert any("special tokens" in n for n in r.notes)


def test_tgi_top_p_truncated_alternatives_are_dropped() -> None:
    # pain point 8: top_p leaves a single alternative with logprob 0 (the truncated,
    # renormalised distribution), contradicting the token's own logprob
    payload = tgi_response(
        " Paris", [tgi_token(7042, " Paris", -0.26)], [[tgi_token(7042, " Paris", 0.0)]], []
    )
    r = normalize_with_notes(payload)
    tok = r.completion.tokens[0]
    assert tok.top_logprobs == () and tok.rank is None and tok.logprob == -0.26
    assert any("top_p" in n for n in r.notes)


def test_tgi_best_of_sequences_become_choices() -> None:
    payload = tgi_response("A", [tgi_token(1, "A", -0.1)], [], [])
    payload["details"]["best_of_sequences"] = [
        {
            "generated_text": "B",
            "finish_reason": "length",
            "generated_tokens": 1,
            "seed": 3,
            "prefill": [],
            "tokens": [tgi_token(2, "B", -0.9)],
            "top_tokens": [],
        }
    ]
    comp = normalize(payload)
    assert [(c.index, c.text) for c in comp.choices] == [(0, "A"), (1, "B")]


def test_tgi_stream_events() -> None:
    # /generate_stream: one event per token; the last carries generated_text and details
    events = [
        {
            "index": 0,
            "token": tgi_token(10, "He", -0.5),
            "top_tokens": [tgi_token(10, "He", -0.5)],
            "generated_text": None,
            "details": None,
        },
        {
            "index": 1,
            "token": tgi_token(11, "llo", -0.1),
            "top_tokens": [],
            "generated_text": "Hello",
            "details": {"finish_reason": "length", "generated_tokens": 2, "seed": None},
        },
    ]
    comp = normalize(events)
    assert comp.text == "Hello" and [t.id for t in comp.tokens] == [10, 11]
    assert comp.choice.finish_reason == "length"


def test_tgi_without_details_says_how() -> None:
    with pytest.raises(NoLogprobsError, match='"details": true'):
        normalize({"generated_text": "Hi"})


def test_tgi_top_tokens_length_mismatch() -> None:
    payload = tgi_response(
        "ab", [tgi_token(1, "a", -0.1), tgi_token(2, "b", -0.1)], [[tgi_token(1, "a", -0.1)]], []
    )
    with pytest.raises(NormalizeError) as info:
        normalize(payload)
    assert info.value.path == "details.top_tokens"


def test_tgi_bytes_derived_from_text() -> None:
    payload = tgi_response("é", [tgi_token(5, "é", -0.3)], [], [])
    assert normalize(payload).tokens[0].bytes == bytes(utf8("é"))
