"""Batch invariance, bit for bit: a request's tokens and logprobs do not depend on what else the
engine serves at the same time, in what order, at what prompt length, or on whether the text is
generated or scored (docs/ENGINE.md)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from logprobe.engines.llamacpp import LlamaEngine

WORDS = [
    "the",
    "river",
    "of",
    "time",
    "and",
    "a",
    "quiet",
    "town",
    "where",
    "people",
    "walk",
    "to",
    "market",
    "in",
    "the",
    "early",
    "light",
    "while",
    "birds",
    "sing",
    "over",
    "old",
    "stone",
    "bridges",
    "and",
    "children",
    "laugh",
    "near",
    "the",
    "water",
]


def text(n_words: int, seed: int) -> str:
    rng = np.random.default_rng(seed)
    return " ".join(rng.choice(WORDS, n_words))


# prompt lengths in tokens roughly 5 .. 700: short, past 256 and past 512
PROMPTS = [text(n, i) for i, n in enumerate((4, 40, 150, 290, 420, 600))]


@pytest.fixture(scope="module")
def uncached() -> Any:
    """An engine without the prefix cache, so that concurrent requests prefill their prompts
    beside each other instead of reusing what the alone run left in the cache."""
    with LlamaEngine(n_threads=2, n_ctx=1024, n_seq_max=6, prefix_cache=False) as eng:
        yield eng


def fingerprint(result: Any) -> Any:
    """Everything numeric a caller sees, as exact Python floats and ints."""
    if hasattr(result, "choices"):
        return [
            [
                (
                    t.id,
                    t.logprob,
                    t.rank,
                    t.entropy,
                    tuple((a.id, a.logprob) for a in t.top_logprobs),
                )
                for t in ch.tokens
            ]
            for ch in result.choices
        ]
    return [
        (t.id, t.logprob, t.rank, t.entropy, tuple((a.id, a.logprob) for a in t.top_logprobs))
        for t in result.tokens
    ]


def request(engine: LlamaEngine, kind: str, i: int, n: int) -> Callable[[], Any]:
    prompt = PROMPTS[i]
    if kind == "complete":
        return lambda: engine.complete(prompt, max_tokens=5, temperature=0, top_logprobs=3, n=n)
    if kind == "sample":  # seeded sampling is per-sequence: invariant as well
        return lambda: engine.complete(
            prompt, max_tokens=5, temperature=0.9, seed=7 + i, top_logprobs=2, n=n
        )
    if kind == "chat":
        msgs = [{"role": "user", "content": prompt}]
        return lambda: engine.chat(msgs, max_tokens=5, temperature=0, top_logprobs=3, n=n)
    return lambda: engine.score(" and then it rained", prompt=prompt, top_logprobs=3)


def run_together(calls: list[Callable[[], Any]]) -> list[Any]:
    out: list[Any] = [None] * len(calls)
    errors: list[BaseException] = []
    gate = threading.Barrier(len(calls))

    def run(k: int) -> None:
        try:
            gate.wait()
            out[k] = calls[k]()
        except BaseException as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=run, args=(k,)) for k in range(len(calls))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    return out


ALONE: dict[tuple[str, int, int], Any] = {}

REQ = st.tuples(
    st.sampled_from(["complete", "chat", "score", "sample"]),
    st.integers(0, len(PROMPTS) - 1),
    st.sampled_from([1, 1, 2]),
)


@settings(
    max_examples=6,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(mix=st.lists(REQ, min_size=2, max_size=4), data=st.data())
def test_any_mix_of_concurrent_requests_equals_each_alone(
    uncached: LlamaEngine, mix: list, data: Any
) -> None:
    order = data.draw(st.permutations(range(len(mix))))
    for key in mix:
        if key not in ALONE:
            ALONE[key] = fingerprint(request(uncached, *key)())
    together = run_together([request(uncached, *mix[k]) for k in order])
    for k, result in zip(order, together, strict=True):
        assert fingerprint(result) == ALONE[mix[k]], mix[k]


def test_generation_equals_scoring_past_512_tokens(uncached: LlamaEngine) -> None:
    for prompt in (PROMPTS[3], PROMPTS[5]):
        assert len(uncached.tokenize(prompt)) > 256
        c = uncached.complete(prompt, max_tokens=8, temperature=0, top_logprobs=4)
        s = uncached.score([t.id for t in c.choice.tokens], prompt=prompt, top_logprobs=4)
        assert fingerprint(s) == fingerprint(c)[0]


def test_cached_prefixes_give_the_numbers_of_a_fresh_prefill(
    engine: LlamaEngine, uncached: LlamaEngine
) -> None:
    """The prefix cache reuses another request's KV stream; the numbers are those of a fresh
    prefill (the uncached engine), for the request that reuses and the one reused."""
    system = {"role": "system", "content": PROMPTS[2]}
    chats = [[system, {"role": "user", "content": q}] for q in ("Why?", "How far is it?")]
    before = engine.stats.get("shared_prefix_tokens", 0)
    cached = [engine.chat(m, max_tokens=6, temperature=0, top_logprobs=2) for m in chats]
    assert engine.stats.get("shared_prefix_tokens", 0) - before > 100
    fresh = [uncached.chat(m, max_tokens=6, temperature=0, top_logprobs=2) for m in chats]
    assert [fingerprint(c) for c in cached] == [fingerprint(f) for f in fresh]


def test_default_kernels_move_the_numbers_so_the_checks_above_can_fail() -> None:
    """With llama.cpp's default kernels (tiled and KV-split attention) the same generation and
    scoring disagree: the checks above would catch a regression to them."""
    with LlamaEngine(
        n_threads=2, n_ctx=1024, n_seq_max=2, prefix_cache=False, batch_invariant=False
    ) as eng:
        assert not eng.batch_invariant
        diffs = []
        for prompt in (PROMPTS[3], PROMPTS[4], PROMPTS[5]):
            c = eng.complete(prompt, max_tokens=8, temperature=0)
            s = eng.score([t.id for t in c.choice.tokens], prompt=prompt)
            diffs += [
                abs(a.logprob - b.logprob) for a, b in zip(c.choice.tokens, s.tokens, strict=True)
            ]
    assert max(diffs) > 1e-4


def test_requests_without_max_tokens_batch_together(uncached: LlamaEngine) -> None:
    """Each sequence owns its KV stream, so a request reserves nothing beyond it: several
    requests that may run to the context limit still decode in the same steps."""
    from logprobe.engines.base import GenerationParams

    room = uncached.n_ctx_seq - len(uncached.tokenize(PROMPTS[1])) - 1
    p = GenerationParams.make(max_tokens=room, temperature=0, n=2, stop=("market", "."))
    steps0 = uncached.stats.get("decode_steps", 0)
    out = run_together([lambda: uncached.complete(PROMPTS[1], p)] * 3)
    steps = uncached.stats["decode_steps"] - steps0
    tokens = sum(len(ch.tokens) for c in out for ch in c.choices)
    assert tokens > steps  # several sequences per decode step
    assert len({str(fingerprint(c)) for c in out}) == 1


def test_classify_and_eval_concurrently_equal_alone(uncached: LlamaEngine) -> None:
    from logprobe.tasks.classify import classify
    from logprobe.tasks.datasets import MCItem
    from logprobe.tasks.evaluate import score_mc_item

    labels = ["weather", "travel", "food"]
    texts = [PROMPTS[1], PROMPTS[3], "We ate fresh bread by the harbour."]
    items = [
        MCItem(
            PROMPTS[2] + "\nQuestion: what is this about?\nAnswer:",
            ("a town", "a river", "the sea"),
            0,
            line=i,
        )
        for i in range(2)
    ]

    def cls(t: str) -> Any:
        r = classify(uncached, t, labels)
        return r.label, r.probs, [o.logprob for o in r.options]

    def mc(item: MCItem) -> Any:
        return score_mc_item(uncached, item, chat_template=False, choice_prefix=" ").logprobs

    calls = [lambda t=t: cls(t) for t in texts] + [lambda it=it: mc(it) for it in items]
    alone = [c() for c in calls]
    assert run_together(calls) == alone
    assert run_together(calls[::-1]) == alone[::-1]
