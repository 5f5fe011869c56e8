"""The embedded engine against an independent oracle: llama-cpp-python's own ``Llama`` with
``logits_all=True`` on the same GGUF. The engine's numbers come from its own scheduler, batching
and vectorised log-softmax; the oracle's from the full logits rows llama.cpp hands to
llama-cpp-python, turned into logprobs here in float64. They must agree within 1e-4 for
generated tokens (logprob, rank, top alternatives, entropy) and for scored prompts.

No expected numbers are written down: both sides are computed in the test, so a change of
model numerics moves both together.
"""

from __future__ import annotations

import ctypes
import os
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

from logprobe.engines import GenerationParams
from logprobe.types import TokenLogprob

TOL = 1e-4
PROMPTS = ["The capital of France is", "def fibonacci(n):\n   ", "Les chats sont"]
SCORED = "Paris is the capital and largest city of France, on the Seine."


@pytest.fixture(scope="module")
def oracle(engine: Any) -> Iterator[Any]:
    """``llama_cpp.Llama(logits_all=True)`` on the engine's GGUF, configured as the engine runs
    llama.cpp: flash attention on (llama-cpp-python would turn it off, which moves logprobs by up
    to 0.1 nat), no extra CPU buffers (``portability.reference_llama``: they crash on AMX
    machines) and ggml's reference kernels (docs/ENGINE.md: the engine's batch invariance)."""
    pytest.importorskip("llama_cpp")
    from logprobe.engines import _ggml
    from logprobe.engines.portability import reference_llama

    llm = reference_llama(
        str(engine.model_path),
        logits_all=True,
        n_ctx=512,
        n_batch=512,
        n_threads=min(2, os.cpu_count() or 1),
        flash_attn=True,
        seed=0,
    )
    assert _ggml.set_reference_mode(ctypes.cast(llm._ctx.ctx, ctypes.c_void_p).value or 0)
    yield llm
    llm.close()


def log_softmax(logits: np.ndarray) -> np.ndarray:
    z = logits.astype(np.float64)
    z = z - z.max()
    return z - np.log(np.exp(z).sum())


def expect_matches(tok: TokenLogprob, lp: np.ndarray, top: int) -> None:
    """``tok`` (from the engine) against the oracle's logprobs ``lp`` at its position."""
    assert tok.id is not None and tok.logprob is not None
    assert abs(tok.logprob - lp[tok.id]) <= TOL, (tok.token, tok.logprob, lp[tok.id])
    # rank: 1 + tokens clearly more likely; ties within TOL may fall either side
    above = int((lp > lp[tok.id] + TOL).sum())
    near = int((np.abs(lp - lp[tok.id]) <= TOL).sum())
    assert tok.rank is not None and above + 1 <= tok.rank <= above + near
    if tok.entropy is not None:
        assert abs(tok.entropy - float(-(np.exp(lp) * lp).sum())) <= TOL
    best = np.argsort(-lp, kind="stable")[:top]
    assert len(tok.top_logprobs) == top
    for alt, want in zip(tok.top_logprobs, best, strict=True):
        assert abs(alt.logprob - lp[want]) <= TOL
        assert alt.id == want or abs(lp[alt.id] - lp[want]) <= TOL  # ties may swap places


@pytest.mark.parametrize("prompt", PROMPTS)
def test_greedy_generation_matches_the_oracle(engine: Any, oracle: Any, prompt: str) -> None:
    ids = engine.tokenize(prompt, add_bos=True)
    comp = engine.complete(ids, GenerationParams.make(max_tokens=8, temperature=0, top_logprobs=5))
    assert comp.tokens
    oracle.reset()
    oracle.eval(ids)  # the prompt in one batch, then one token per step, as the engine decodes
    for tok in comp.tokens:
        lp = log_softmax(np.asarray(oracle.scores[oracle.n_tokens - 1]))
        assert tok.id == int(np.argmax(lp)) or lp.max() - lp[tok.id] <= TOL  # greedy
        expect_matches(tok, lp, 5)
        oracle.eval([tok.id])


def test_prompt_scores_match_the_oracle(engine: Any, oracle: Any) -> None:
    ids = engine.tokenize(SCORED, add_bos=True)
    scored = engine.score(ids, top_logprobs=3)
    oracle.reset()
    oracle.eval(ids)
    rows = np.asarray(oracle.scores[: len(ids)])
    toks = list(scored.tokens)
    bos = len(ids) - len(toks)  # the engine leaves a BOS out of the scored text
    assert bos in (0, 1)
    for i, tok in enumerate(toks):
        pos = bos + i
        if pos == 0:
            assert tok.logprob is None  # nothing to predict the first token from
            continue
        expect_matches(tok, log_softmax(rows[pos - 1]), 3)
    total = sum(float(log_softmax(rows[p - 1])[ids[p]]) for p in range(max(1, bos), len(ids)))
    assert abs(scored.logprob - total) <= TOL * len(ids)


def test_continuation_scores_match_the_oracle(engine: Any, oracle: Any) -> None:
    prompt = engine.tokenize("Q: What is the capital of France?\nA:", add_bos=True)
    conts = [engine.tokenize(c) for c in (" Paris", " Lyon, a city in France", " 42")]
    results = engine.score_continuations(prompt, conts)
    for cont, res in zip(conts, results, strict=True):
        oracle.reset()
        oracle.eval(prompt + cont)
        rows = np.asarray(oracle.scores[: len(prompt) + len(cont)])
        assert [t.id for t in res.tokens] == cont
        for i, tok in enumerate(res.tokens):
            expect_matches(tok, log_softmax(rows[len(prompt) + i - 1]), 0)
