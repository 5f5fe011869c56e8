"""Through the OpenAI API: a request's logprobs are the same, to the bit, served alone or beside
others in any order, on prompts past 256 and 512 tokens, for chat, completions and responses;
and n=2 works without max_tokens (what the openai SDK sends by default)."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import pytest

from logprobe.engines.llamacpp import LlamaEngine

from .conftest import LiveServer, boot

WORDS = [
    "a",
    "small",
    "harbour",
    "town",
    "keeps",
    "its",
    "boats",
    "painted",
    "blue",
    "and",
    "its",
    "gardens",
    "full",
    "of",
    "herbs",
    "while",
    "the",
    "ferry",
    "crosses",
    "twice",
    "a",
    "day",
    "to",
    "the",
    "island",
    "where",
    "the",
    "lighthouse",
    "stands",
]


def words(n: int, seed: int) -> str:
    return " ".join(np.random.default_rng(seed).choice(WORDS, n))


# questions from a few tokens to ~600 (past 256 and 512), as in the check
CHATS = [words(n, i) + "\nWhat is this about?" for i, n in enumerate((2, 60, 300, 560))]


@pytest.fixture(scope="module")
def live() -> Iterator[LiveServer]:
    """A server whose engine has no prefix cache: concurrent requests prefill beside each other."""
    eng = LlamaEngine(n_threads=2, n_ctx=1024, n_seq_max=8, prefix_cache=False)
    srv = boot(eng)
    yield srv
    srv.stop()
    eng.close()


def chat(client: Any, model: str, q: str) -> Any:
    r = client.chat.completions.create(
        model=model,
        messages=[{"role": "user", "content": q}],
        max_tokens=12,
        temperature=0,
        logprobs=True,
        top_logprobs=5,
    )
    return [
        (e.token, e.logprob, [(a.token, a.logprob) for a in e.top_logprobs])
        for e in r.choices[0].logprobs.content
    ]


def completion(client: Any, model: str, q: str) -> Any:
    r = client.completions.create(model=model, prompt=q, max_tokens=8, temperature=0, logprobs=5)
    lp = r.choices[0].logprobs
    return list(zip(lp.tokens, lp.token_logprobs, lp.top_logprobs, strict=True))


def response(client: Any, model: str, q: str) -> Any:
    r = client.responses.create(
        model=model,
        input=q,
        max_output_tokens=8,
        temperature=0,
        include=["message.output_text.logprobs"],
        top_logprobs=3,
    )
    return [
        (e.token, e.logprob, [(a.token, a.logprob) for a in e.top_logprobs])
        for e in r.output[0].content[0].logprobs
    ]


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_concurrent_and_alone_logprobs_are_identical(live: LiveServer) -> None:
    client = live.client(timeout=600)
    model = live.serving.model_name
    counts = [len(live.serving.engine.tokenize(q)) for q in CHATS]
    assert max(counts) > 512 and any(256 < c < 512 for c in counts)
    calls = [(fn, q) for q in CHATS for fn in (chat,)] + [
        (completion, CHATS[3]),
        (response, CHATS[2]),
    ]
    alone = [fn(client, model, q) for fn, q in calls]
    for order in (list(range(len(calls))), list(range(len(calls)))[::-1]):
        with ThreadPoolExecutor(len(calls)) as pool:
            together = list(pool.map(lambda k: calls[k][0](client, model, calls[k][1]), order))
        for k, got in zip(order, together, strict=True):
            assert got == alone[k], (calls[k][0].__name__, counts[CHATS.index(calls[k][1])])


def test_n2_without_max_tokens(live: LiveServer) -> None:
    client = live.client(timeout=600)
    r = client.chat.completions.create(
        model=live.serving.model_name,
        n=2,
        temperature=0.7,
        seed=3,
        logprobs=True,
        messages=[{"role": "user", "content": "Say hello in five words."}],
    )
    assert len(r.choices) == 2
    for ch in r.choices:
        assert ch.finish_reason in ("stop", "length")
        assert all(e.logprob <= 0 for e in ch.logprobs.content)
