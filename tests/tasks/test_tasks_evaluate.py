"""evaluate / compare / batch classification on the real embedded model."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from logprobe.errors import ContextOverflowError, InvalidRequestError
from logprobe.tasks import (
    MCItem,
    classify_dataset,
    compare_texts,
    loglikelihood,
    multiple_choice,
    rolling_perplexity,
    text_rows,
)

TINY_MC = [
    MCItem("Question: What color is the sky on a clear day?\nAnswer:", ("blue", "green", "red"), 0),
    MCItem("Question: How many legs does a dog have?\nAnswer:", ("four", "two", "eleven"), 0),
    MCItem("Question: What is the opposite of hot?\nAnswer:", ("loud", "cold", "heavy"), 1),
    MCItem("Question: Which animal says moo?\nAnswer:", ("a cat", "a cow", "a fish"), 1),
]


def test_multiple_choice_metrics_on_a_tiny_set(engine: Any) -> None:
    report = multiple_choice(engine, TINY_MC, workers=2)
    assert report.n == 4 and not report.skipped
    m = report.metrics()
    for name in ("acc", "acc_norm_tokens", "acc_norm_chars"):
        assert 0.0 <= m[name] <= 1.0
        p = m[name]
        assert m[f"{name}_stderr"] == pytest.approx(math.sqrt(p * (1 - p) / 4))
    # metrics agree with the per-item scores they come from
    for r in report.results:
        lp = list(r.logprobs)
        assert r.prediction("acc") == lp.index(max(lp))
        per_char = [x / n for x, n in zip(lp, r.n_chars, strict=False)]
        assert r.prediction("acc_norm_chars") == per_char.index(max(per_char))
        assert r.n_chars == tuple(len(c) for c in r.item.choices)
    expected = sum(r.prediction("acc") == r.item.gold for r in report.results) / 4
    assert m["acc"] == expected
    assert m["acc"] >= 0.75  # a 135M model still knows these
    assert json.dumps(report.to_dict(with_items=True), allow_nan=False)


def test_mc_scores_equal_direct_scoring_and_chat_template_changes_them(engine: Any) -> None:
    item = TINY_MC[0]
    report = multiple_choice(engine, [item], workers=1)
    direct = engine.score_continuations(item.query, [" " + c for c in item.choices])
    assert list(report.results[0].logprobs) == pytest.approx([s.logprob for s in direct], abs=1e-4)
    chat = multiple_choice(engine, [item], chat_template=True, workers=1)
    assert chat.results[0].logprobs != pytest.approx(report.results[0].logprobs, abs=1e-3)


def test_mc_skips_items_the_engine_rejects(engine: Any) -> None:
    too_long = MCItem("word " * (engine.n_ctx_seq + 10), ("a", "b"), 0, line=7)
    report = multiple_choice(engine, [TINY_MC[0], too_long], workers=2)
    assert report.n == 1
    assert report.skipped[0][0] == 7 and "context" in report.skipped[0][1]


def test_loglikelihood_and_greedy_flag(engine: Any) -> None:
    ctx = "One, two, three, four,"
    res = loglikelihood(engine, ctx, [" five", " banana"])
    assert res[0].logprob > res[1].logprob
    assert res[0].is_greedy is True
    assert res[1].is_greedy is False
    with pytest.raises(InvalidRequestError):
        loglikelihood(engine, ctx, [])


def test_rolling_perplexity_matches_scoring_and_windows(engine: Any) -> None:
    text = "The quick brown fox jumps over the lazy dog. " * 3
    whole = rolling_perplexity(engine, text)
    direct = engine.score(text)
    assert whole.windows == 1
    assert whole.logprob == pytest.approx(direct.logprob, abs=1e-4)
    assert whole.n_tokens == direct.n_scored
    assert whole.perplexity == pytest.approx(math.exp(-direct.logprob / direct.n_scored))
    windowed = rolling_perplexity(engine, text, window=16)
    assert windowed.windows > 1
    assert windowed.n_tokens == whole.n_tokens  # every token but the first is still predicted
    # less context per token can only cost likelihood on this repetitive text
    assert windowed.logprob <= whole.logprob + 1e-3
    with pytest.raises(ContextOverflowError):
        rolling_perplexity(engine, text, window=engine.n_ctx + 1)
    with pytest.raises(InvalidRequestError):
        rolling_perplexity(engine, "   ")


def test_compare_same_model_has_no_regressions(engine: Any) -> None:
    texts = ["Hello world, this is a test.", "Paris is the capital of France."]
    report = compare_texts(engine, engine, texts, threshold=0.01)
    d = report.to_dict()
    assert d["same_tokenization"] and d["regressions"] == 0 and d["improvements"] == 0
    assert d["segments"] == sum(len(engine.tokenize(t)) - 1 for t in texts)
    assert abs(d["mean_delta"]) < 1e-4


def test_classify_dataset_writes_incrementally_and_skips_bad_rows(
    engine: Any, tmp_path: Path
) -> None:
    data = tmp_path / "reviews.jsonl"
    data.write_text(
        '{"text": "I loved it, wonderful film.", "gold": "positive"}\n'
        '{"text": "Terrible, boring and far too long.", "gold": "negative"}\n'
        "{broken json\n"
        '{"gold": "positive"}\n'
        f'{{"text": "{"very " * 9000}long", "gold": "negative"}}\n'
        '{"text": "A masterpiece.", "gold": "positive"}\n',
        encoding="utf-8",
    )
    out = tmp_path / "preds.jsonl"
    labels = ["positive", "negative"]
    seen: list[int] = []

    def on_row(row: Any, rec: Any, err: Any) -> None:
        if rec is not None:
            # every finished row is already on disk when the callback runs
            lines = out.read_text(encoding="utf-8").splitlines()
            assert json.loads(lines[-1])["index"] == row.index
            seen.append(row.index)

    s = classify_dataset(
        engine, text_rows(data, labels=labels), labels, out, workers=2, on_row=on_row
    )
    assert s.n_rows == 6 and s.n_written == 3 and len(s.skipped) == 3
    assert [k["line"] for k in s.skipped] == [3, 4, 5]
    assert "context" in s.skipped[2]["error"]
    preds = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [p["index"] for p in preds] == [0, 1, 5] == seen
    for p in preds:
        assert set(p) >= {"label", "probs", "confidence", "gold", "correct"}
        assert p["correct"] == (p["label"] == p["gold"])
        assert math.fsum(p["probs"].values()) == pytest.approx(1.0)
    # resume keeps the finished rows and redoes nothing
    s2 = classify_dataset(engine, text_rows(data, labels=labels), labels, out, resume=True)
    assert s2.n_resumed == 3 and s2.n_written == 0
    assert len(out.read_text(encoding="utf-8").splitlines()) == 3
