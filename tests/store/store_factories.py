"""Builders of real Completions for store tests (plain data, no mocks)."""

from __future__ import annotations

import math
from collections.abc import Sequence

from hypothesis import strategies as st

from logprobe.types import Alternative, Choice, Completion, TokenLogprob, Usage


def tok(
    text: str,
    logprob: float | None,
    *,
    alts: Sequence[tuple[str, float]] = (),
    raw: bytes | None = None,
    id: int | None = None,
    entropy: float | None = None,
    rank: int | None = 1,
) -> TokenLogprob:
    b = raw if raw is not None else text.encode("utf-8")
    return TokenLogprob(
        token=text,
        bytes=b,
        logprob=logprob,
        id=id,
        rank=rank,
        entropy=entropy,
        top_logprobs=tuple(Alternative(a, a.encode("utf-8"), lp) for a, lp in alts),
    )


def completion(
    tokens: Sequence[TokenLogprob],
    *,
    model: str = "test-model",
    prompt_tokens: Sequence[TokenLogprob] | None = None,
    finish: str | None = "stop",
) -> Completion:
    text = b"".join(t.bytes or t.token.encode() for t in tokens).decode("utf-8", "replace")
    choice = Choice(
        text=text,
        tokens=tuple(tokens),
        finish_reason=finish,  # type: ignore[arg-type]
        prompt_tokens=None if prompt_tokens is None else tuple(prompt_tokens),
    )
    return Completion(
        choices=(choice,), model=model, usage=Usage(len(prompt_tokens or ()), len(tokens))
    )


def sentence(
    words: Sequence[str], logprobs: Sequence[float], model: str = "test-model"
) -> Completion:
    toks = [
        tok(w, lp, alts=[(w, lp), (w.upper(), math.log(max(1e-9, 1 - math.exp(lp))))])
        for w, lp in zip(words, logprobs, strict=True)
    ]
    return completion(toks, model=model)


def big_completion(n: int, *, top: int = 5, model: str = "big-model") -> Completion:
    toks = []
    for i in range(n):
        lp = -((i * 7919) % 1000) / 250.0
        alts = [(f" w{(i + k) % 5000}", lp - k * 0.5) for k in range(top)]
        toks.append(tok(f" w{i % 5000}", lp, alts=alts, id=i % 32000))
    return completion(toks, model=model)


# -- hypothesis strategies: every shape a stored token may take ---------------------------------
logprobs = st.one_of(st.none(), st.floats(min_value=-9999.0, max_value=0.0, allow_nan=False))
texts = st.text(max_size=8)
raw_bytes = st.one_of(st.none(), st.binary(max_size=6))


@st.composite
def alternatives(draw: st.DrawFn) -> Alternative:
    text = draw(texts)
    b = draw(st.one_of(st.just(text.encode("utf-8")), raw_bytes))
    return Alternative(
        token=text,
        bytes=b,
        logprob=draw(st.floats(min_value=-9999.0, max_value=0.0)),
        id=draw(st.one_of(st.none(), st.integers(0, 200_000))),
    )


@st.composite
def tokens(draw: st.DrawFn) -> TokenLogprob:
    text = draw(texts)
    b = draw(st.one_of(st.just(text.encode("utf-8")), raw_bytes))
    return TokenLogprob(
        token=text,
        bytes=b,
        logprob=draw(logprobs),
        id=draw(st.one_of(st.none(), st.integers(0, 200_000))),
        rank=draw(st.one_of(st.none(), st.integers(1, 100))),
        top_logprobs=tuple(draw(st.lists(alternatives(), max_size=3))),
        entropy=draw(st.one_of(st.none(), st.floats(min_value=0.0, max_value=12.0))),
    )


@st.composite
def completions(draw: st.DrawFn) -> Completion:
    n_choices = draw(st.integers(1, 2))
    choices = []
    for i in range(n_choices):
        toks = tuple(draw(st.lists(tokens(), max_size=6)))
        prompt = draw(st.one_of(st.none(), st.lists(tokens(), max_size=3).map(tuple)))
        choices.append(
            Choice(
                text=draw(st.text(max_size=20)),
                tokens=toks,
                finish_reason=draw(st.sampled_from([None, "stop", "length"])),
                index=i,
                prompt_tokens=prompt,
            )
        )
    return Completion(
        choices=tuple(choices),
        model=draw(st.text(max_size=10)),
        usage=Usage(draw(st.integers(0, 50)), draw(st.integers(0, 50))),
        provider=draw(st.sampled_from(["logprobe", "openai", "vllm"])),
        logprob_mode=draw(st.sampled_from(["raw", "processed"])),
        id=draw(st.one_of(st.none(), st.text(max_size=10))),
    )
