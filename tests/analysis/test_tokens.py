"""Per-token numbers: hand-computed cases and properties of the entropy bounds."""

from __future__ import annotations

import math

import numpy as np
import pytest
from analysis_helpers import p, tok
from hypothesis import given, settings
from hypothesis import strategies as st

from logprobe.analysis import clean_logprob, entropy_bounds, token_stats
from logprobe.types import LOGPROB_FLOOR, Alternative, TokenLogprob


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, (None, "unscored")),
        (float("nan"), (None, "invalid")),
        (0.5, (None, "invalid")),
        (0.0005, (0.0, "ok")),
        (-0.25, (-0.25, "ok")),
        (-9999.0, (LOGPROB_FLOOR, "floored")),
        (-1e6, (LOGPROB_FLOOR, "floored")),
        (float("-inf"), (LOGPROB_FLOOR, "floored")),
    ],
)
def test_clean_logprob(value: float | None, expected: tuple[float | None, str]) -> None:
    assert clean_logprob(value) == expected


def test_hand_computed_top3_with_vocab() -> None:
    # chosen p=.5; alternatives .5 (itself), .3, .1 -> listed mass .9, leftover .1, cap .1
    t = tok("a", p(0.5), [("a", p(0.5)), ("b", p(0.3)), ("c", p(0.1))])
    s = token_stats(t, vocab_size=10)
    assert s.prob == pytest.approx(0.5)
    assert s.rank == 1
    assert s.margin == pytest.approx(math.log(0.5 / 0.3))
    assert s.listed_mass == pytest.approx(0.9)
    # lower: listed terms + leftover .1 packed into one token of .1
    listed = 0.5 * math.log(2) + 0.3 * math.log(1 / 0.3) + 0.1 * math.log(10)
    assert s.entropy == pytest.approx(listed + 0.1 * math.log(10))  # = 1.1682825
    assert s.entropy == pytest.approx(1.1682825, abs=1e-7)
    assert not s.entropy_exact
    # upper: leftover .1 spread over the 7 unlisted tokens: .1*ln(7/.1)
    assert s.entropy_upper == pytest.approx(listed + 0.1 * math.log(7 / 0.1))
    assert s.entropy_upper == pytest.approx(1.3628735, abs=1e-7)


def test_leftover_packed_under_cap() -> None:
    # listed: .4 (chosen) and .2; leftover .4 with cap .2 -> two tokens of .2
    t = tok("x", p(0.4), [("x", p(0.4)), ("y", p(0.2))])
    s = token_stats(t)
    expected = -(0.4 * math.log(0.4)) - 3 * (0.2 * math.log(0.2))
    assert s.entropy == pytest.approx(expected)
    assert s.entropy_upper is None  # no vocabulary size, no upper bound


def test_exact_entropy_wins_over_bound() -> None:
    t = tok("x", p(0.4), [("x", p(0.4)), ("y", p(0.2))], entropy=1.25)
    s = token_stats(t, vocab_size=100)
    assert s.entropy == 1.25 and s.entropy_exact and s.entropy_upper == 1.25


def test_nan_entropy_falls_back_to_bound() -> None:
    s = token_stats(tok("x", p(0.4), [("x", p(0.4))], entropy=float("nan")))
    assert not s.entropy_exact and s.entropy is not None and math.isfinite(s.entropy)


def test_chosen_outside_alternatives() -> None:
    t = tok("z", p(0.05), [("a", p(0.6)), ("b", p(0.2))])
    s = token_stats(t)
    assert s.rank is None  # rank > 2 but unknown
    assert s.margin == pytest.approx(math.log(0.05 / 0.6))
    assert s.listed_mass == pytest.approx(0.85)


def test_reported_rank_is_kept() -> None:
    assert token_stats(tok("z", p(0.05), [("a", p(0.6))], rank=7)).rank == 7


def test_rank_derived_from_alternatives() -> None:
    t = tok("b", p(0.3), [("a", p(0.6)), ("b", p(0.3)), ("c", p(0.05))])
    assert token_stats(t).rank == 2


def test_no_alternatives_bound() -> None:
    s = token_stats(tok("a", p(0.7)))
    assert s.rank is None and s.margin is None
    assert s.entropy == pytest.approx(-(0.7 * math.log(0.7) + 0.3 * math.log(0.3)))


def test_unscored_token_without_alternatives() -> None:
    s = token_stats(tok("a", None))
    assert (s.logprob, s.prob, s.entropy, s.status) == (None, None, None, "unscored")


def test_duplicate_and_nan_alternatives_cleaned() -> None:
    t = TokenLogprob(
        "a",
        b"a",
        p(0.5),
        top_logprobs=(
            Alternative("a", b"a", p(0.5)),
            Alternative("a", b"a", p(0.5)),
            Alternative("b", b"b", float("nan")),
            Alternative("c", b"c", p(0.2)),
        ),
    )
    s = token_stats(t)
    assert s.listed_mass == pytest.approx(0.7)
    assert s.margin == pytest.approx(math.log(0.5 / 0.2))


def test_match_by_id_before_bytes() -> None:
    t = TokenLogprob(
        "a",
        b"a",
        p(0.5),
        id=7,
        top_logprobs=(Alternative("a", b"a", p(0.3), id=8), Alternative("a", b"a", p(0.5), id=7)),
    )
    s = token_stats(t)
    assert s.rank == 1 and s.margin == pytest.approx(math.log(0.5 / 0.3))


@st.composite
def distributions(draw: st.DrawFn) -> tuple[np.ndarray, int, int]:
    v = draw(st.integers(2, 40))
    logits = np.array(draw(st.lists(st.floats(-12, 12), min_size=v, max_size=v)))
    probs = np.exp(logits - logits.max())
    probs /= probs.sum()
    k = draw(st.integers(1, v))
    chosen = draw(st.integers(0, v - 1))
    return probs, k, chosen


def _token_from(probs: np.ndarray, k: int, chosen: int) -> TokenLogprob:
    order = np.argsort(-probs, kind="stable")[:k]
    alts = tuple(
        Alternative(f"t{i}", f"t{i}".encode(), float(np.log(probs[i])), id=int(i)) for i in order
    )
    return TokenLogprob(
        f"t{chosen}",
        f"t{chosen}".encode(),
        float(np.log(probs[chosen])),
        id=chosen,
        top_logprobs=alts,
    )


@settings(max_examples=300, deadline=None)
@given(distributions())
def test_bounds_contain_true_entropy(case: tuple[np.ndarray, int, int]) -> None:
    probs, k, chosen = case
    h = float(-(probs * np.log(probs)).sum())
    s = token_stats(_token_from(probs, k, chosen), vocab_size=len(probs))
    assert s.entropy is not None and s.entropy_upper is not None
    assert 0.0 <= s.entropy <= h + 1e-9
    assert h <= s.entropy_upper + 1e-9
    assert s.entropy_upper <= math.log(len(probs)) + 1e-12


@settings(max_examples=100, deadline=None)
@given(distributions())
def test_full_listing_is_exact(case: tuple[np.ndarray, int, int]) -> None:
    probs, _, chosen = case
    h = float(-(probs * np.log(probs)).sum())
    s = token_stats(_token_from(probs, len(probs), chosen), vocab_size=len(probs))
    assert s.entropy == pytest.approx(h, abs=1e-9)
    assert s.entropy_upper == pytest.approx(h, abs=1e-9)


@settings(max_examples=100, deadline=None)
@given(distributions())
def test_more_alternatives_tighten_the_lower_bound(case: tuple[np.ndarray, int, int]) -> None:
    probs, k, chosen = case
    fewer = token_stats(_token_from(probs, max(1, k - 1), chosen)).entropy
    more = token_stats(_token_from(probs, k, chosen)).entropy
    assert fewer is not None and more is not None
    assert fewer <= more + 1e-9


@settings(max_examples=100, deadline=None)
@given(distributions())
def test_margin_sign_matches_rank(case: tuple[np.ndarray, int, int]) -> None:
    probs, k, chosen = case
    s = token_stats(_token_from(probs, k, chosen))
    if s.margin is not None and s.rank is not None:
        assert (s.margin >= 0) == (s.rank == 1) or s.margin == 0


def test_entropy_bounds_direct() -> None:
    b = entropy_bounds([math.log(0.5), math.log(0.5)], math.log(0.5), vocab_size=4)
    assert b.lower == pytest.approx(math.log(2)) and b.upper == pytest.approx(math.log(2))
    assert b.listed_mass == pytest.approx(1.0)
