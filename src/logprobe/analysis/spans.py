"""Words and spans: sub-word tokens merged into words, and runs of low-confidence words.

Word boundaries come from the tokens' bytes: a token starts a new word when its first character is
whitespace, or when its first character and the previous token's last character differ in class
(word characters vs punctuation). A token that starts in the middle of a multi-byte character
always continues the previous one. An apostrophe between letters is part of the word (``don't``).
So ``" Par" "is" ","`` gives the words ``Paris`` and ``,``; ``"3" "." "14"`` gives three words
(numbers are found as a whole by :mod:`logprobe.analysis.critical`).

A word's probability is the product of its tokens' probabilities (``exp`` of the summed logprob);
a word with an unscored token has no probability. A *low-confidence span* is a maximal run of
words whose probability is below a threshold; whitespace-only words between two low words do not
break the run. Spans always start and end on word boundaries.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .._json import json_safe
from ._layout import Layout
from .tokens import TokenStats

DEFAULT_SPAN_PROB = 0.3


@dataclass(frozen=True, slots=True)
class Word:
    """A word: tokens [token_start, token_end); characters [char_start, char_end) of the text,
    surrounding whitespace excluded (``text`` is empty for a whitespace-only word)."""

    text: str
    token_start: int
    token_end: int
    char_start: int
    char_end: int
    logprob: float | None
    min_prob: float | None

    @property
    def prob(self) -> float | None:
        return None if self.logprob is None else math.exp(self.logprob)

    @property
    def is_space(self) -> bool:
        return self.text == ""


@dataclass(frozen=True, slots=True)
class Span:
    """A contiguous stretch of tokens with its confidence. ``kind`` is ``"low"`` for a
    low-confidence span, else the critical kind (``number``, ``date``, ``name``, ``url``,
    ``email``, ``code``)."""

    kind: str
    text: str
    token_start: int
    token_end: int
    char_start: int
    char_end: int
    sum_logprob: float | None
    min_prob: float | None
    n_scored: int

    @property
    def n_tokens(self) -> int:
        return self.token_end - self.token_start

    @property
    def prob(self) -> float | None:
        return None if self.sum_logprob is None else math.exp(self.sum_logprob)

    @property
    def mean_logprob(self) -> float | None:
        return (
            None
            if self.sum_logprob is None or not self.n_scored
            else self.sum_logprob / self.n_scored
        )

    def to_dict(self) -> dict[str, Any]:
        return json_safe(
            {
                "kind": self.kind,
                "text": self.text,
                "token_start": self.token_start,
                "token_end": self.token_end,
                "char_start": self.char_start,
                "char_end": self.char_end,
                "prob": self.prob,
                "min_prob": self.min_prob,
                "mean_logprob": self.mean_logprob,
                "n_tokens": self.n_tokens,
            }
        )


def _confidence(
    stats: Sequence[TokenStats], start: int, end: int
) -> tuple[float | None, float | None, int]:
    """(sum logprob, min prob, n scored) of tokens [start, end); sum is None if any is unscored."""
    part = stats[start:end]
    scored = [s for s in part if s.logprob is not None]
    total = sum(s.logprob for s in scored) if len(scored) == len(part) and part else None  # type: ignore[misc]
    min_p = min((s.prob for s in scored), default=None)  # type: ignore[type-var]
    return total, min_p, len(scored)


def make_span(
    kind: str,
    lay: Layout,
    stats: Sequence[TokenStats],
    t0: int,
    t1: int,
    c0: int | None = None,
    c1: int | None = None,
) -> Span:
    """A :class:`Span` over tokens [t0, t1); characters default to those tokens' characters
    without surrounding whitespace."""
    if c0 is None or c1 is None:
        c0, c1 = _trim(lay.text, lay.token_chars[t0][0], lay.token_chars[t1 - 1][1])
    total, min_p, n = _confidence(stats, t0, t1)
    return Span(kind, lay.text[c0:c1], t0, t1, c0, c1, total, min_p, n)


def _trim(text: str, c0: int, c1: int) -> tuple[int, int]:
    """[c0, c1) without leading and trailing whitespace (empty at c0 if all whitespace)."""
    while c0 < c1 and text[c0].isspace():
        c0 += 1
    while c1 > c0 and text[c1 - 1].isspace():
        c1 -= 1
    return c0, c1


def _word_groups(lay: Layout) -> list[tuple[int, int]]:
    groups: list[tuple[int, int]] = []
    last: str | None = None  # class of the current word's last character
    for i in range(len(lay.token_bytes)):
        first = lay.first_class(i)
        starts = not groups or (first is not None and (first == "space" or first != last))
        if starts:
            groups.append((i, i + 1))
        else:
            groups[-1] = (groups[-1][0], i + 1)
        last = lay.last_class(i) or last
    return groups


def merge_words(lay: Layout, stats: Sequence[TokenStats]) -> list[Word]:
    """Merge tokens into :class:`Word` objects (see module docstring); covers every token."""
    words = []
    for t0, t1 in _word_groups(lay):
        c0, c1 = _trim(lay.text, lay.token_chars[t0][0], lay.token_chars[t1 - 1][1])
        total, min_p, _ = _confidence(stats, t0, t1)
        words.append(Word(lay.text[c0:c1], t0, t1, c0, c1, total, min_p))
    return words


def _is_low(w: Word, threshold: float) -> bool:
    return w.logprob is not None and math.exp(w.logprob) < threshold


def low_confidence_spans(
    lay: Layout,
    stats: Sequence[TokenStats],
    words: Sequence[Word],
    threshold: float = DEFAULT_SPAN_PROB,
) -> list[Span]:
    """Maximal runs of words with probability below ``threshold``, in text order."""
    runs: list[tuple[int, int]] = []  # word index ranges [w0, w1)
    for i, w in enumerate(words):
        if w.is_space or not _is_low(w, threshold):
            continue
        if runs and _joins(words, runs[-1][1], i):
            runs[-1] = (runs[-1][0], i + 1)
        else:
            runs.append((i, i + 1))
    spans = []
    for w0, w1 in runs:
        first, last = words[w0], words[w1 - 1]
        spans.append(
            make_span(
                "low",
                lay,
                stats,
                first.token_start,
                last.token_end,
                first.char_start,
                last.char_end,
            )
        )
    return spans


def _joins(words: Sequence[Word], run_end: int, i: int) -> bool:
    """Word ``i`` extends a run ending before ``run_end`` if only whitespace words lie between."""
    return all(w.is_space for w in words[run_end:i])
