"""Words, low-confidence spans and critical spans."""

from __future__ import annotations

import math

import pytest
from analysis_helpers import p, tok, toks
from hypothesis import given, settings
from hypothesis import strategies as st

from logprobe.analysis import analyze, find_critical
from logprobe.types import TokenLogprob, tokens_text


def words_of(tokens: list[TokenLogprob]) -> list[str]:
    return [w.text for w in analyze(tokens).words]


def test_subwords_merge_and_punctuation_splits() -> None:
    ts = toks(
        [
            ("The", -0.1),
            (" cap", -0.2),
            ("ital", -0.3),
            (" of", -0.1),
            (" Fr", -0.5),
            ("ance", -0.1),
            (",", -0.1),
            (" don", -0.2),
            ("'t", -0.1),
            ("!", -0.1),
        ]
    )
    a = analyze(ts)
    assert [w.text for w in a.words] == ["The", "capital", "of", "France", ",", "don't", "!"]
    france = a.words[3]
    assert (france.token_start, france.token_end) == (4, 6)
    assert a.text[france.char_start : france.char_end] == "France"
    assert france.logprob == pytest.approx(-0.6)
    assert france.min_prob == pytest.approx(math.exp(-0.5))


def test_utf8_split_across_tokens_is_one_word() -> None:
    ts = [
        tok(" caf", -0.1),
        tok(b"\xc3", -0.2),
        tok(b"\xa9", -0.3),
        tok(" au", -0.1),
        tok(" lait", -0.1),
    ]
    a = analyze(ts)
    assert [w.text for w in a.words] == ["café", "au", "lait"]
    assert a.words[0].logprob == pytest.approx(-0.6)
    assert a.text == " café au lait"


def test_newlines_and_whitespace_tokens() -> None:
    ts = toks([("Hi", -0.1), ("\n\n", -0.1), ("You", -0.1), ("  ", -0.1), ("there", -0.1)])
    a = analyze(ts)
    assert [w.text for w in a.words] == ["Hi", "", "You", "", "there"]
    assert [w.is_space for w in a.words] == [False, True, False, True, False]


def test_low_span_exact_and_whitespace_does_not_break_it() -> None:
    ts = toks(
        [
            ("It", p(0.9)),
            (" was", p(0.9)),
            (" built", p(0.2)),
            ("\n", p(0.9)),
            ("in", p(0.25)),
            (" stone", p(0.1)),
            (".", p(0.95)),
        ]
    )
    a = analyze(ts)
    assert len(a.low_spans) == 1
    span = a.low_spans[0]
    assert span.text == "built\nin stone"
    assert (span.token_start, span.token_end) == (2, 6)
    assert span.prob == pytest.approx(0.2 * 0.9 * 0.25 * 0.1)
    assert span.min_prob == pytest.approx(0.1)
    assert a.words_in(span) == 3


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["a", " b", "c", " ", "\n", ",", " dd", "ee"]), st.floats(-6.0, 0.0)
        ),
        min_size=1,
        max_size=60,
    )
)
def test_words_in_counts_the_words_inside_each_span(pairs: list[tuple[str, float]]) -> None:
    """The bisection in words_in agrees with the definition (every non-space word whose tokens
    lie inside the span) for low spans and for arbitrary word-aligned spans."""
    a = analyze(toks(pairs), span_prob=0.9)
    spans = list(a.low_spans) + list(a.critical)
    for span in spans:
        expected = sum(
            1
            for w in a.words
            if not w.is_space
            and w.token_start >= span.token_start
            and w.token_end <= span.token_end
        )
        assert a.words_in(span) == expected
    assert [w.token_start for w in a.words] == sorted(w.token_start for w in a.words)


def test_word_probability_uses_all_its_tokens() -> None:
    # each token is above 0.3 but the word "Parisian" (0.5 * 0.5) is below it
    a = analyze(toks([(" Par", p(0.5)), ("isian", p(0.5)), (" food", p(0.99))]))
    assert [s.text for s in a.low_spans] == ["Parisian"]


def test_unscored_word_is_never_low() -> None:
    a = analyze([tok("Hello", None), tok(" world", p(0.01))])
    assert [s.text for s in a.low_spans] == ["world"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Visit https://example.com/a?b=1. Then", [("url", "https://example.com/a?b=1")]),
        ("Mail bob.smith@example.co.uk today", [("email", "bob.smith@example.co.uk")]),
        ("born on 1912-06-23 in", [("date", "1912-06-23")]),
        ("on March 5, 2021 we", [("date", "March 5, 2021")]),
        ("cost $1,234.50 or 12% more", [("number", "$1,234.50"), ("number", "12%")]),
        ("call parse_args() or getValue now", [("code", "parse_args()"), ("code", "getValue")]),
        ("use `x = 1` here", [("code", "`x = 1`")]),
        ("The capital is Paris. London is big", [("name", "Paris")]),
        ("we met New York Times staff", [("name", "New York Times")]),
        ("I think so. Yes", []),
    ],
)
def test_find_critical(text: str, expected: list[tuple[str, str]]) -> None:
    found = [(k, text[s:e]) for k, s, e in find_critical(text)]
    assert found == expected


def test_sentence_initial_capital_is_not_a_name_but_rest_of_run_is() -> None:
    text = "Albert Einstein was born. He moved."
    assert [(k, text[s:e]) for k, s, e in find_critical(text)] == [("name", "Einstein")]


def test_critical_span_maps_to_tokens_and_confidence() -> None:
    ts = toks([(" in", p(0.9)), (" 18", p(0.2)), ("67", p(0.5)), (",", p(0.9))])
    (span,) = analyze(ts).critical
    assert (span.kind, span.text, span.token_start, span.token_end) == ("number", "1867", 1, 3)
    assert span.min_prob == pytest.approx(0.2)
    assert span.prob == pytest.approx(0.1)


def test_critical_kinds_can_be_restricted() -> None:
    a = analyze(toks([(" Paris", -0.1), (" 12", -0.1)]), critical_kinds=("number",))
    assert [s.kind for s in a.critical] == ["number"]


# -- properties --------------------------------------------------------------------------------

texts = st.text(alphabet=st.sampled_from(list("ab Z9_.,'\n-é€😀")), min_size=0, max_size=40)


@st.composite
def split_text(draw: st.DrawFn) -> list[TokenLogprob]:
    """A text cut into tokens at arbitrary byte positions (so UTF-8 characters may be split)."""
    raw = draw(texts).encode("utf-8")
    cuts = sorted(set(draw(st.lists(st.integers(0, len(raw)), max_size=12))) | {0, len(raw)})
    probs = draw(st.lists(st.floats(0.01, 1.0), min_size=len(cuts), max_size=len(cuts)))
    return [
        tok(raw[a:b], math.log(pr))
        for a, b, pr in zip(cuts, cuts[1:], probs, strict=False)
        if b > a
    ]


@settings(max_examples=300, deadline=None)
@given(split_text(), st.floats(0.05, 1.0))
def test_words_partition_tokens_and_spans_align(
    tokens: list[TokenLogprob], threshold: float
) -> None:
    a = analyze(tokens, span_prob=threshold)
    assert a.text == tokens_text(tokens)
    ranges = [(w.token_start, w.token_end) for w in a.words]
    flat = [i for s, e in ranges for i in range(s, e)]
    assert flat == list(range(len(tokens)))  # words cover every token once, in order
    starts = {w.token_start for w in a.words}
    ends = {w.token_end for w in a.words}
    for span in a.low_spans:
        assert span.token_start in starts and span.token_end in ends
        assert span.prob is not None and span.text.strip() == span.text
    for w in a.words:
        assert w.text == a.text[w.char_start : w.char_end]
        assert w.text == w.text.strip()


def _oracle_words(text: str) -> list[str]:
    """Runs of one character class, classifying each character on its own."""

    def cls(i: int) -> str:
        ch = text[i]
        if ch in "'’" and 0 < i < len(text) - 1 and text[i - 1].isalpha() and text[i + 1].isalpha():
            return "word"
        return "space" if ch.isspace() else "word" if (ch.isalnum() or ch == "_") else "punct"

    runs: list[tuple[str, str]] = []
    for i, ch in enumerate(text):
        c = cls(i)
        if runs and runs[-1][0] == c != "space":
            runs[-1] = (c, runs[-1][1] + ch)
        else:
            runs.append((c, ch))
    return [r for c, r in runs if c != "space"]


@settings(max_examples=200, deadline=None)
@given(texts)
def test_per_character_tokens_give_class_runs(text: str) -> None:
    """Cut into one token per character, words are the runs of one character class."""
    tokens = [tok(ch, -0.1) for ch in text]
    got = [w.text for w in analyze(tokens).words if not w.is_space]
    assert got == _oracle_words(text)
