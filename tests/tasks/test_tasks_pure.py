"""Pure parts of the tasks: scoring maths, datasets, threshold sweeps, alignment, first-token
approximation. No engine needed."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import logprobe.tasks as tasks
from logprobe.errors import InvalidRequestError
from logprobe.tasks.classify import first_token_label_logprobs
from logprobe.tasks.compare import align
from logprobe.tasks.datasets import load_mc_items, parse_label_map, subset, text_rows
from logprobe.tasks.route import RoutedItem, pick_threshold, sweep
from logprobe.tasks.scoring import (
    char_length,
    check_normalization,
    check_options,
    normalized_score,
    score_options,
    softmax,
    top_two_margin,
)
from logprobe.types import Alternative, ScoredText, TokenLogprob

finite_lp = st.floats(min_value=-60.0, max_value=0.0, allow_nan=False)


def _isort_key(name: str) -> tuple[int, str]:
    kind = 0 if name.isupper() else 1 if name[:1].isupper() else 2
    return kind, name


def test_public_api_is_sorted_and_importable() -> None:
    assert list(tasks.__all__) == sorted(tasks.__all__, key=_isort_key)
    for name in tasks.__all__:
        assert getattr(tasks, name) is not None


@given(st.lists(finite_lp, min_size=1, max_size=12))
@settings(deadline=None)
def test_softmax_is_a_distribution_preserving_order(scores: list[float]) -> None:
    p = softmax(scores)
    assert p.shape == (len(scores),)
    assert math.isclose(float(p.sum()), 1.0, rel_tol=1e-9)
    assert np.all(p >= 0)
    order = np.argsort(scores, kind="stable")
    assert np.all(np.diff(p[order]) >= 0)  # a higher score never gets a lower probability


def test_softmax_of_sum_logprobs_is_exact_conditional() -> None:
    # two options with probabilities 0.2 and 0.05 under the model -> 0.8 / 0.2 within the set
    p = softmax([math.log(0.2), math.log(0.05)])
    assert p.tolist() == pytest.approx([0.8, 0.2])


def test_normalizations() -> None:
    assert normalized_score(-6.0, 3, 12, "none") == -6.0
    assert normalized_score(-6.0, 3, 12, "tokens") == -2.0
    assert normalized_score(-6.0, 3, 12, "chars") == -0.5
    assert char_length(" Paris") == 5  # leading space not counted
    with pytest.raises(InvalidRequestError, match="normalize"):
        check_normalization("bytes")


def _scored(lps: list[float], text: str = "x") -> ScoredText:
    toks = tuple(TokenLogprob(token="t", bytes=b"t", logprob=lp) for lp in lps)
    return ScoredText(text=text, tokens=toks)


def test_score_options_reports_each_normalization() -> None:
    scored = [_scored([-1.0, -1.0, -1.0]), _scored([-2.5])]
    texts = ["aaaaaa", "b"]
    by_sum = score_options(texts, [" " + t for t in texts], scored, "none")
    by_tok = score_options(texts, [" " + t for t in texts], scored, "tokens")
    by_chr = score_options(texts, [" " + t for t in texts], scored, "chars")
    assert [o.logprob for o in by_sum] == [-3.0, -2.5]
    assert by_sum[1].prob > by_sum[0].prob  # total favours the short option
    assert by_tok[0].prob > by_tok[1].prob  # -1 per token beats -2.5
    assert by_chr[0].score == pytest.approx(-0.5) and by_chr[1].score == pytest.approx(-2.5)


@given(st.lists(st.floats(0, 1), min_size=1, max_size=8))
@settings(deadline=None)
def test_margin_is_top_minus_second(probs: list[float]) -> None:
    m = top_two_margin(probs)
    s = sorted(probs, reverse=True)
    assert m == pytest.approx(s[0] - (s[1] if len(s) > 1 else 0.0))
    assert m >= 0


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ([], "at least one"),
        (["a", "a"], "duplicate label 'a'"),
        (["a", "  "], "empty or blank"),
        (["a", 3], "expected a string"),
        ("abc", "single string"),
    ],
)
def test_check_options_rejects_bad_sets(options: object, message: str) -> None:
    with pytest.raises(InvalidRequestError, match=message) as e:
        check_options(options, param="labels", kind="label")  # type: ignore[arg-type]
    assert e.value.param == "labels"


# --- datasets ---------------------------------------------------------------------------------


def test_jsonl_rows_skip_and_name_bad_lines(tmp_path: Path) -> None:
    p = tmp_path / "d.jsonl"
    p.write_text(
        '{"text": "good", "gold": "pos"}\n'
        "not json\n"
        '{"gold": "neg"}\n'
        "\n"
        '["a list"]\n'
        '{"text": "fine", "gold": "weird"}\n'
        '{"text": "x", "gold": "neg"}\n',
        encoding="utf-8",
    )
    rows = list(text_rows(p, labels=["pos", "neg"]))
    assert [r.error is None for r in rows] == [True, False, False, False, False, True]
    errors = [r.error for r in rows if r.error]
    assert "line 2: invalid JSON" in errors[0]
    assert errors[1] == "line 3: missing field 'text'"
    assert "expected a JSON object" in errors[2]
    assert "gold 'weird' is not one of the labels" in errors[3]
    assert rows[0].text == "good" and rows[0].gold == "pos"


def test_tsv_and_csv_with_columns_and_label_map(tmp_path: Path) -> None:
    tsv = tmp_path / "d.tsv"
    tsv.write_text('sentence\tlabel\nit \'s "great" \t1\nbad\t0\nshort row\n', encoding="utf-8")
    rows = list(text_rows(tsv, text_col="sentence", label_map=parse_label_map("0=neg,1=pos")))
    assert rows[0].text == 'it \'s "great"' and rows[0].gold == "pos"
    assert rows[1].gold == "neg"
    assert rows[2].error is not None and "1 fields" in rows[2].error
    csv_p = tmp_path / "n.csv"
    csv_p.write_text('label,title,description\n3,"Oil, up","Prices rose"\n', encoding="utf-8")
    (row,) = text_rows(csv_p, text_col="title,description", label_col="label")
    assert row.text == "Oil, up\nPrices rose" and row.gold == "3"


def test_bad_dataset_arguments(tmp_path: Path) -> None:
    with pytest.raises(InvalidRequestError, match="no such file"):
        list(text_rows(tmp_path / "missing.jsonl"))
    with pytest.raises(InvalidRequestError, match="cannot tell the format"):
        list(text_rows(tmp_path / "d.xlsx"))
    with pytest.raises(InvalidRequestError, match="RAW=LABEL"):
        parse_label_map("0:neg")


def test_mc_items_and_seeded_subset(tmp_path: Path) -> None:
    p = tmp_path / "mc.jsonl"
    lines = [
        {"query": "Q1", "choices": ["a", "b"], "gold": 1},
        {"query": "Q2", "choices": ["a"], "gold": 0},
        {"query": "Q3", "choices": ["a", "b"], "gold": 2},
        {"choices": ["a", "b"], "gold": 0},
        {"query": "Q5", "choices": ["a", "b", "c"], "gold": 0, "subject": "x"},
    ]
    p.write_text("\n".join(json.dumps(x) for x in lines) + "\n", encoding="utf-8")
    items, bad = load_mc_items(p)
    assert [i.query for i in items] == ["Q1", "Q5"]
    assert items[1].meta == {"subject": "x"}
    assert [ln for ln, _ in bad] == [2, 3, 4]
    assert "at least 2" in bad[0][1] and "'gold'" in bad[1][1] and "'query'" in bad[2][1]
    seq = list(range(100))
    assert subset(seq, 10, 7) == subset(seq, 10, 7)
    assert subset(seq, 10, 7) != subset(seq, 10, 8)
    assert subset(seq, 10, None) == list(range(10))
    assert subset(seq, 10, 7) == sorted(subset(seq, 10, 7))
    with pytest.raises(InvalidRequestError, match="limit"):
        subset(seq, 0, None)


# --- routing ----------------------------------------------------------------------------------

routed = st.lists(
    st.builds(RoutedItem, st.floats(0, 1), st.booleans(), st.booleans()), min_size=1, max_size=40
)


@given(routed)
@settings(max_examples=60, deadline=None)
def test_sweep_endpoints_and_monotone_escalation(items: list[RoutedItem]) -> None:
    pts = sweep(items, cheap_cost=1.0, strong_cost=10.0)
    n = len(items)
    assert pts[0].escalation_rate == 0.0
    assert pts[0].accuracy == pytest.approx(sum(i.cheap_correct for i in items) / n)
    assert pts[-1].escalation_rate == 1.0
    assert pts[-1].accuracy == pytest.approx(sum(i.strong_correct for i in items) / n)
    rates = [p.escalation_rate for p in pts]
    assert rates == sorted(rates)
    for p in pts:
        assert p.cost == pytest.approx(1.0 + 10.0 * p.escalation_rate)


@given(routed, st.floats(0, 1))
@settings(max_examples=60, deadline=None)
def test_pick_threshold_is_cheapest_meeting_target(items: list[RoutedItem], target: float) -> None:
    pts = sweep(items)
    chosen = pick_threshold(pts, target_accuracy=target)
    ok = [p for p in pts if p.accuracy >= target]
    if not ok:
        assert chosen is None
    else:
        assert chosen is not None and chosen.accuracy >= target
        assert chosen.cost == min(p.cost for p in ok)


def test_pick_threshold_needs_one_goal() -> None:
    pts = sweep([RoutedItem(0.5, True, True)])
    with pytest.raises(InvalidRequestError):
        pick_threshold(pts)


# --- alignment and first-token approximation --------------------------------------------------


def _tok(b: bytes, lp: float | None) -> TokenLogprob:
    return TokenLogprob(token=b.decode(), bytes=b, logprob=lp)


def test_align_groups_tokens_between_common_boundaries() -> None:
    text = "unhappy days"
    a = ScoredText(text, (_tok(b"un", None), _tok(b"happy", -1.0), _tok(b" days", -2.0)))
    b = ScoredText(
        text, (_tok(b"unh", None), _tok(b"appy", -0.5), _tok(b" da", -1.0), _tok(b"ys", -3.0))
    )
    segs, same = align(a, b, text)
    assert not same
    # "unhappy" holds an unscored first token in both -> left out; " days" is one segment
    assert [(s.text, s.logprob_a, s.logprob_b) for s in segs] == [(" days", -2.0, -4.0)]
    assert segs[0].delta == -2.0
    segs2, same2 = align(a, a, text)
    assert same2 and [(s.text, s.delta) for s in segs2] == [("happy", 0.0), (" days", 0.0)]


def test_first_token_label_logprobs_shares_and_bounds() -> None:
    alts = [
        Alternative(" Pos", b" Pos", math.log(0.5)),
        Alternative(" Neg", b" Neg", math.log(0.2)),
        Alternative(" S", b" S", math.log(0.1)),
        Alternative("\n", b"\n", math.log(0.1)),
    ]
    lps, notes = first_token_label_logprobs(
        alts, ["Positive", "Negative", "Sports", "Science", "World"], " "
    )
    assert lps[0] == pytest.approx(math.log(0.5))
    assert lps[1] == pytest.approx(math.log(0.2))
    assert lps[2] == pytest.approx(math.log(0.05)) and lps[3] == pytest.approx(math.log(0.05))
    assert lps[4] == pytest.approx(math.log(0.1))  # missing -> smallest seen (upper bound)
    assert any("shared" in n for n in notes) and any("'World'" in n for n in notes)
