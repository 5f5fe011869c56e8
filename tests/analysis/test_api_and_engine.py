"""Public API shape, and the analysis on real output of the embedded engine."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest

import logprobe.analysis as analysis
from logprobe.analysis import analyze, gate, summarize, token_stats, token_view
from logprobe.types import Alternative, TokenLogprob, tokens_text


def test_all_is_sorted_and_importable() -> None:
    assert analysis.__all__ == sorted(analysis.__all__)
    for name in analysis.__all__:
        assert hasattr(analysis, name), name


def test_analysis_does_not_import_heavy_layers() -> None:
    import subprocess
    import sys

    code = (
        "import sys, logprobe.analysis; "
        "bad = [m for m in ('torch', 'fastapi', 'llama_cpp', 'sqlalchemy') if m in sys.modules]; "
        "print(','.join(bad))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


@pytest.fixture(scope="module")
def answer(engine: Any) -> Any:
    from logprobe.engines import GenerationParams

    params = GenerationParams.make(max_tokens=24, temperature=0, top_logprobs=20)
    return engine.chat(
        [{"role": "user", "content": "In which year did the Titanic sink? Answer briefly."}], params
    )


def test_real_output_summary_is_consistent(answer: Any) -> None:
    s = summarize(answer)
    assert s.n_scored == len(answer.tokens) > 0
    assert s.entropy_kind == "exact"  # the embedded engine reports exact entropy
    assert s.perplexity == pytest.approx(math.exp(-s.mean_logprob))  # type: ignore[operator]
    assert s.top1_share == 1.0  # greedy decoding always picks rank 1
    json.dumps(summarize(answer).to_dict(), allow_nan=False)
    a = analyze(answer)
    assert a.text == tokens_text(answer.tokens) == answer.text
    json.dumps(token_view(a), allow_nan=False)
    assert gate(answer).decision in ("publish", "review", "reject")


def test_top20_bounds_contain_the_engines_exact_entropy(answer: Any, engine: Any) -> None:
    for t in answer.tokens:
        assert t.entropy is not None
        without = TokenLogprob(t.token, t.bytes, t.logprob, t.id, t.rank, t.top_logprobs, None)
        s = token_stats(without, vocab_size=engine.n_vocab)
        assert s.entropy is not None and s.entropy_upper is not None
        assert s.entropy <= t.entropy + 1e-4 <= s.entropy_upper + 2e-4
        # fewer alternatives: a looser but still valid lower bound
        top3 = TokenLogprob(t.token, t.bytes, t.logprob, t.id, t.rank, t.top_logprobs[:3], None)
        assert token_stats(top3).entropy <= s.entropy + 1e-9  # type: ignore[operator]


def test_exact_entropy_matches_bound_when_whole_vocab_listed(engine: Any) -> None:
    scored = engine.score(" Paris", prompt="The capital of France is", top_logprobs=20)
    t = scored.tokens[-1]
    alts = tuple(Alternative(a.token, a.bytes, a.logprob, a.id) for a in t.top_logprobs)
    s = token_stats(
        TokenLogprob(t.token, t.bytes, t.logprob, t.id, None, alts, None), vocab_size=engine.n_vocab
    )
    assert s.rank == t.rank
    assert s.entropy <= t.entropy + 1e-4  # type: ignore[operator]
