"""Sequence summaries: exact values on small cases, properties, and bad input."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from analysis_helpers import completion, p, tok, toks
from hypothesis import given, settings
from hypothesis import strategies as st

from logprobe.analysis import summarize
from logprobe.errors import InvalidRequestError
from logprobe.types import Completion, ScoredText

THREE = [(" a", -0.1), (" b", -1.0), (" c", -2.0)]


def test_three_tokens_exact() -> None:
    s = summarize(toks(THREE), first_k=2)
    assert (s.n_tokens, s.n_scored, s.n_chars, s.n_bytes) == (3, 3, 5, 6)
    assert s.sum_logprob == pytest.approx(-3.1)
    assert s.mean_logprob == pytest.approx(-3.1 / 3)
    assert (s.min_logprob, s.max_logprob) == (-2.0, -0.1)
    # numpy's linear quantiles on sorted [-2, -1, -0.1]: position q*(n-1)
    assert s.logprob_q50 == pytest.approx(-1.0)
    assert s.logprob_q25 == pytest.approx(-1.5)
    assert s.logprob_q10 == pytest.approx(-1.8)
    assert s.logprob_q05 == pytest.approx(-1.9)
    assert s.prob_q25 == pytest.approx((math.exp(-2) + math.exp(-1)) / 2)
    assert s.perplexity == pytest.approx(math.exp(3.1 / 3))
    assert s.perplexity == pytest.approx(2.8105, abs=1e-4)
    assert s.sequence_prob == pytest.approx(math.exp(-3.1))
    assert s.mean_prob == pytest.approx((math.exp(-0.1) + math.exp(-1) + math.exp(-2)) / 3)
    assert s.min_prob == pytest.approx(math.exp(-2))
    assert s.logprob_per_char == pytest.approx(-3.1 / 5)  # " a b c" minus the leading space
    assert s.logprob_per_byte == pytest.approx(-3.1 / 6)
    assert s.low_prob_share == pytest.approx(2 / 3)  # e^-1 and e^-2 are below 0.5
    assert s.first_k == 2
    assert s.first_k_mean_logprob == pytest.approx(-0.55)
    assert s.first_k_min_prob == pytest.approx(math.exp(-1))


def test_entropy_and_ranks() -> None:
    ts = [
        tok("a", p(0.5), [("a", p(0.5)), ("b", p(0.25))], entropy=1.0),
        tok("c", p(0.25), [("b", p(0.5)), ("c", p(0.25))], entropy=2.0),
    ]
    s = summarize(ts)
    assert (s.mean_entropy, s.max_entropy, s.entropy_kind) == (1.5, 2.0, "exact")
    assert s.top1_share == 0.5
    assert s.mean_margin == pytest.approx(0.0)  # +ln2 and -ln2
    assert s.min_margin == pytest.approx(-math.log(2))


def test_entropy_kind_mixed_and_bound() -> None:
    assert summarize([tok("a", p(0.5), entropy=1.0), tok("b", p(0.5))]).entropy_kind == "mixed"
    assert summarize([tok("a", p(0.5))]).entropy_kind == "lower_bound"


def test_accepts_choice_completion_scoredtext() -> None:
    ts = toks(THREE)
    expected = summarize(ts)
    c = completion(ts)
    assert summarize(c) == expected
    assert summarize(c.choices[0]) == expected
    assert summarize(ScoredText(text=" a b c", tokens=tuple(ts))) == expected


def test_empty_sequence_is_all_none_and_json_safe() -> None:
    s = summarize([])
    assert s.n_tokens == 0 and s.n_scored == 0
    assert s.mean_logprob is None and s.perplexity is None and s.prob_q10 is None
    json.dumps(s.to_dict(), allow_nan=False)


def test_unscored_first_token_is_skipped() -> None:
    s = summarize([tok("Hello", None), tok(" world", -0.5)])
    assert (s.n_scored, s.n_unscored, s.mean_logprob) == (1, 1, -0.5)


def test_nan_and_positive_are_invalid_and_left_out() -> None:
    s = summarize([tok("a", float("nan")), tok("b", -1.0), tok("c", 3.0), tok("d", 1e-5)])
    assert (s.n_invalid, s.n_scored) == (2, 2)
    assert s.sum_logprob == pytest.approx(-1.0)
    json.dumps(s.to_dict(), allow_nan=False)


def test_floor_values_are_kept_and_perplexity_overflows_to_none() -> None:
    s = summarize([tok("a", -9999.0), tok("b", float("-inf")), tok("c", -0.1)])
    assert s.n_floored == 2
    assert s.min_logprob == -9999.0 and s.min_prob == 0.0
    assert s.perplexity == math.inf
    d = s.to_dict()
    assert d["perplexity"] is None and d["log_perplexity"] == pytest.approx((2 * 9999 + 0.1) / 3)
    json.dumps(d, allow_nan=False)


def test_no_alternatives_gives_no_margin_or_rank() -> None:
    s = summarize(toks(THREE))
    assert s.mean_margin is None and s.top1_share is None


@pytest.mark.parametrize("bad", ["text", 3, None, [1, 2]])
def test_rejects_non_tokens(bad: object) -> None:
    with pytest.raises(InvalidRequestError) as e:
        summarize(bad)  # type: ignore[arg-type]
    assert e.value.param is not None and e.value.param.startswith("tokens")


def test_rejects_completion_without_choices() -> None:
    with pytest.raises(InvalidRequestError, match="no choices") as e:
        summarize(Completion(choices=()))
    assert e.value.param == "choices"


@pytest.mark.parametrize(
    ("kw", "param"),
    [
        ({"first_k": 0}, "first_k"),
        ({"low_prob": 0.0}, "low_prob"),
        ({"low_prob": 1.5}, "low_prob"),
        ({"first_k": True}, "first_k"),
    ],
)
def test_rejects_bad_options(kw: dict[str, object], param: str) -> None:
    with pytest.raises(InvalidRequestError) as e:
        summarize(toks(THREE), **kw)  # type: ignore[arg-type]
    assert e.value.param == param


logprob_lists = st.lists(st.floats(-30.0, 0.0), min_size=1, max_size=60)


@settings(max_examples=200, deadline=None)
@given(logprob_lists)
def test_perplexity_is_exp_minus_mean(lps: list[float]) -> None:
    s = summarize([tok(f" w{i}", lp) for i, lp in enumerate(lps)])
    assert s.mean_logprob is not None and s.perplexity is not None
    assert s.perplexity == pytest.approx(math.exp(-s.mean_logprob), rel=1e-9)
    assert s.geometric_mean_prob == pytest.approx(1 / s.perplexity, rel=1e-9)
    assert s.sum_logprob == pytest.approx(s.mean_logprob * len(lps), rel=1e-9, abs=1e-9)


@settings(max_examples=200, deadline=None)
@given(logprob_lists)
def test_order_statistics(lps: list[float]) -> None:
    s = summarize([tok(f" w{i}", lp) for i, lp in enumerate(lps)])
    qs = [s.min_logprob, s.logprob_q05, s.logprob_q10, s.logprob_q25, s.logprob_q50, s.max_logprob]
    assert all(a <= b + 1e-12 for a, b in zip(qs, qs[1:], strict=False))  # type: ignore[operator]
    pq = [s.min_prob, s.prob_q05, s.prob_q10, s.prob_q25, s.prob_q50]
    assert all(a <= b + 1e-12 for a, b in zip(pq, pq[1:], strict=False))  # type: ignore[operator]
    assert s.geometric_mean_prob <= s.mean_prob + 1e-12  # type: ignore[operator]  # AM-GM
    assert 0.0 <= s.low_prob_share <= 1.0  # type: ignore[operator]


@settings(max_examples=100, deadline=None)
@given(logprob_lists)
def test_repeating_a_sequence_keeps_normalised_metrics(lps: list[float]) -> None:
    once = summarize([tok(f" w{i}", lp) for i, lp in enumerate(lps)])
    twice = summarize([tok(f" w{i}", lp) for i, lp in enumerate(lps + lps)])
    assert twice.sum_logprob == pytest.approx(2 * once.sum_logprob, abs=1e-9)  # type: ignore[operator]
    assert twice.mean_logprob == pytest.approx(once.mean_logprob, abs=1e-9)
    assert twice.min_prob == once.min_prob
    assert twice.low_prob_share == pytest.approx(once.low_prob_share)


@settings(max_examples=100, deadline=None)
@given(
    st.lists(
        st.one_of(st.none(), st.just(float("nan")), st.just(-9999.0), st.floats(-50, 0)),
        max_size=20,
    )
)
def test_to_dict_is_always_json_safe(lps: list[float | None]) -> None:
    s = summarize([tok(f" w{i}", lp) for i, lp in enumerate(lps)])
    json.dumps(s.to_dict(), allow_nan=False)
    assert s.n_scored + s.n_unscored + s.n_invalid == len(lps)
    scored = [v for v in lps if v is not None and not math.isnan(v)]
    if scored:
        assert s.sum_logprob == pytest.approx(float(np.sum(scored)))
