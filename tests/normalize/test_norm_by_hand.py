"""Every provider shape against numbers worked out by hand.

Each case is one documented payload (built with the shared builders in ``norm_fixtures.py``, or
written out) and what the normalizer must make of it, computed here by hand from the payload:
each token's text, logprob, id, rank (1 + alternatives strictly more likely, when the token is
among them) and alternatives, then the choice's mean logprob and perplexity, written as the
arithmetic on the payload's numbers.
"""

from __future__ import annotations

import math
from typing import Any

import pytest
from norm_fixtures import (
    ANTHROPIC_MESSAGE,
    chat_entry,
    chat_response,
    completion_response,
    gem_cand,
    gemini_response,
    lcpp_post_sampling,
    lcpp_prob,
    lcpp_response,
    ollama_generate,
    responses_object,
    tgi_response,
    tgi_token,
)

from logprobe import Alternative, Choice, Completion, NoLogprobsError, TokenLogprob, Usage
from logprobe.normalize import normalize, normalize_with_notes

Tok = tuple[str, float | None, int | None, int | None, list[tuple[str, float]]]
"""(token, logprob, id, rank, [(alternative, logprob), ...])"""

LN_HALF, LN_QUARTER = math.log(0.5), math.log(0.25)
TOGETHER = [-1.0029297, -0.07861328, -2.1367188]


def _together() -> dict[str, Any]:
    # Together's docs example: chat.completion with "prompt": [] and choice logprobs
    return {
        "id": "85d3d3ff1a0d8c57-EWR",
        "object": "chat.completion",
        "created": 1709240335,
        "model": "codellama/CodeLlama-70b-Instruct-hf",
        "prompt": [],
        "choices": [
            {
                "finish_reason": "length",
                "index": 0,
                "logprobs": {"tokens": ["1", ".", " Define"], "token_logprobs": TOGETHER},
                "message": {"role": "assistant", "content": "1. Define"},
            }
        ],
        "usage": {"prompt_tokens": 33, "completion_tokens": 3, "total_tokens": 36},
    }


def _vllm() -> dict[str, Any]:
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
    ]
    return payload


def _ollama() -> dict[str, Any]:
    return ollama_generate(
        "Hi!",
        [
            {
                "token": "Hi",
                "logprob": -0.5,
                "bytes": [72, 105],
                "top_logprobs": [
                    {"token": "Hi", "logprob": -0.5, "bytes": [72, 105]},
                    {"token": "Yo", "logprob": -1.0, "bytes": [89, 111]},
                ],
            },
            {"token": "!", "logprob": -1.5, "bytes": [33], "top_logprobs": []},
        ],
    )


CASES: list[tuple[str, Any, str, str, list[Tok], float]] = [
    # (case, payload, provider, text, tokens, mean logprob by hand)
    (
        "openai_chat",
        chat_response(
            [
                chat_entry("Hi", -0.5, [("Hi", -0.5), ("Hello", -1.2)]),
                chat_entry("!", -1.5, [(".", -0.9), ("!", -1.5)]),
            ],
            "Hi!",
        ),
        "openai_chat",
        "Hi!",
        [
            ("Hi", -0.5, None, 1, [("Hi", -0.5), ("Hello", -1.2)]),
            ("!", -1.5, None, 2, [(".", -0.9), ("!", -1.5)]),
        ],  # "." -0.9 > -1.5: rank 2
        (-0.5 - 1.5) / 2,
    ),
    (
        "openai_completions",
        completion_response(
            " Hi there",
            [" Hi", " there"],
            [-0.25, -0.75],
            [{" Hi": -0.25, " Hello": -1.6}, {" there": -0.75, "!": -0.7}],
            [0, 3],
            (4, 2),
        ),
        "openai_completions",
        " Hi there",
        [
            (" Hi", -0.25, None, 1, [(" Hi", -0.25), (" Hello", -1.6)]),
            # legacy top_logprobs always add the sampled token to the top-n, so " there" below "!"
            # may rank anywhere from 2 down: no rank; alternatives come most likely first
            (" there", -0.75, None, None, [("!", -0.7), (" there", -0.75)]),
        ],
        (-0.25 - 0.75) / 2,
    ),
    (
        "openai_responses",
        responses_object(
            [
                (
                    "Yes.",
                    [
                        {
                            "token": "Yes",
                            "logprob": -0.1,
                            "bytes": [89, 101, 115],
                            "top_logprobs": [
                                {"token": "Yes", "logprob": -0.1, "bytes": [89, 101, 115]},
                                {"token": "No", "logprob": -2.4, "bytes": [78, 111]},
                            ],
                        },
                        {"token": ".", "logprob": -0.3, "bytes": [46], "top_logprobs": []},
                    ],
                )
            ]
        ),
        "openai_responses",
        "Yes.",
        [
            ("Yes", -0.1, None, 1, [("Yes", -0.1), ("No", -2.4)]),
            (".", -0.3, None, None, []),
        ],  # no alternatives: no rank to derive
        (-0.1 - 0.3) / 2,
    ),
    (
        "vllm",
        _vllm(),
        "vllm",
        " Paris",
        [(" Paris", -0.26, None, 1, [(" Paris", -0.26), (" the", -2.8)])],
        -0.26,
    ),
    (
        "llamacpp",
        lcpp_response(
            "Hi!",
            [
                lcpp_prob(4, "Hi", -0.5, [(4, "Hi", -0.5), (5, "Yo", -1.0)]),
                lcpp_prob(6, "!", -1.5, [(7, ".", -0.4), (6, "!", -1.5)]),
            ],
        ),
        "llamacpp",
        "Hi!",
        [
            ("Hi", -0.5, 4, 1, [("Hi", -0.5), ("Yo", -1.0)]),
            ("!", -1.5, 6, 2, [(".", -0.4), ("!", -1.5)]),
        ],
        (-0.5 - 1.5) / 2,
    ),
    (
        "llamacpp post-sampling probabilities",
        lcpp_response("Hi", [lcpp_post_sampling(4, "Hi", 0.5, [(4, "Hi", 0.5), (5, "Yo", 0.25)])]),
        "llamacpp",
        "Hi",
        [("Hi", LN_HALF, 4, 1, [("Hi", LN_HALF), ("Yo", LN_QUARTER)])],  # logprob = ln(prob)
        LN_HALF,
    ),
    (
        "tgi",
        tgi_response(
            "Hi!",
            [tgi_token(1, "Hi", -0.5), tgi_token(2, "!", -1.5)],
            [
                [tgi_token(1, "Hi", -0.5), tgi_token(3, "Yo", -1.0)],
                [tgi_token(4, ".", -0.4), tgi_token(2, "!", -1.5)],
            ],
            prefill=[],
        ),
        "tgi",
        "Hi!",
        [
            ("Hi", -0.5, 1, 1, [("Hi", -0.5), ("Yo", -1.0)]),
            ("!", -1.5, 2, 2, [(".", -0.4), ("!", -1.5)]),
        ],
        (-0.5 - 1.5) / 2,
    ),
    (
        "ollama",
        _ollama(),
        "ollama",
        "Hi!",
        [("Hi", -0.5, None, 1, [("Hi", -0.5), ("Yo", -1.0)]), ("!", -1.5, None, None, [])],
        (-0.5 - 1.5) / 2,
    ),
    (
        "together",
        _together(),
        "together",
        "1. Define",
        [
            ("1", TOGETHER[0], None, None, []),
            (".", TOGETHER[1], None, None, []),
            (" Define", TOGETHER[2], None, None, []),
        ],
        sum(TOGETHER) / 3,
    ),
    (
        "gemini",
        gemini_response(
            "Hi!",
            [gem_cand("Hi", -0.5, 1), gem_cand("!", -1.5, 2)],
            [
                [gem_cand("Hi", -0.5, 1), gem_cand("Yo", -1.0, 3)],
                [gem_cand(".", -0.4, 4), gem_cand("!", -1.5, 2)],
            ],
        ),
        "gemini",
        "Hi!",
        [
            ("Hi", -0.5, 1, 1, [("Hi", -0.5), ("Yo", -1.0)]),
            ("!", -1.5, 2, 2, [(".", -0.4), ("!", -1.5)]),
        ],
        (-0.5 - 1.5) / 2,
    ),
]


def _seen(tokens: tuple[TokenLogprob, ...]) -> list[Tok]:
    return [
        (t.token, t.logprob, t.id, t.rank, [(a.token, a.logprob) for a in t.top_logprobs])
        for t in tokens
    ]


@pytest.mark.parametrize(
    ("payload", "provider", "text", "tokens", "mean"),
    [pytest.param(*c[1:], id=c[0]) for c in CASES],
)
def test_each_provider_by_hand(
    payload: Any, provider: str, text: str, tokens: list[Tok], mean: float
) -> None:
    comp = normalize(payload)
    assert comp.provider == provider and comp.text == text
    got = _seen(comp.tokens)
    assert [g[0] for g in got] == [t[0] for t in tokens]
    for g, want in zip(got, tokens, strict=True):
        assert g[1] == pytest.approx(want[1], abs=1e-12)
        assert g[2:4] == want[2:4], (g, want)
        assert [a for a, _ in g[4]] == [a for a, _ in want[4]]
        assert [v for _, v in g[4]] == pytest.approx([v for _, v in want[4]], abs=1e-12)
    assert comp.mean_logprob == pytest.approx(mean, abs=1e-12)
    assert comp.perplexity == pytest.approx(math.exp(-mean), rel=1e-12)
    assert comp.logprob == pytest.approx(mean * len(tokens), abs=1e-9)
    assert "".join(t.token for t in comp.tokens) == text


def test_vllm_prompt_tokens_by_hand() -> None:
    prompt = normalize(_vllm()).choice.prompt_tokens
    assert prompt is not None
    # the first prompt token has no context; the second is outside the listed top (rank 812)
    assert [(t.token, t.logprob, t.id, t.rank) for t in prompt[1:]] == [
        (" capital", -9.6, 3575, 812)
    ]
    assert prompt[0].logprob is None
    assert [(a.token, a.logprob) for a in prompt[1].top_logprobs] == [(" of", -0.41)]


def test_llamacpp_probabilities_are_the_processed_distribution() -> None:
    comp = normalize(CASES[5][1])
    assert comp.logprob_mode == "processed"  # post-sampling probabilities
    assert comp.tokens[0].top_logprobs[1].prob == pytest.approx(0.25)


def test_the_neutral_shape_round_trips_exactly() -> None:
    alt = Alternative("Hi", b"Hi", -0.5, 4)
    comp = Completion(
        choices=(
            Choice(
                "Hi\xff",
                (
                    TokenLogprob("Hi", b"Hi", -0.5, 4, 1, (alt,), 1.25),
                    TokenLogprob("\ufffd", b"\xff", -9999.0, 9, 3, (), None),
                ),
                "length",
            ),
        ),
        model="m",
        usage=Usage(3, 2),
        provider="logprobe",
        id="x",
        created=1,
    )
    back = normalize(comp.to_dict())
    assert back == comp
    assert back.mean_logprob == pytest.approx((-0.5 - 9999.0) / 2)


def test_anthropic_has_no_logprobs_and_says_where_to_get_them() -> None:
    for read in (normalize, lambda p: normalize_with_notes(p, require_logprobs=False)):
        with pytest.raises(NoLogprobsError, match="no request option enables them.*OpenAI"):
            read(ANTHROPIC_MESSAGE)
