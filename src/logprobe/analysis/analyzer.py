"""One pass over a response: token stats, summary, words, low-confidence and critical spans."""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .._json import json_safe
from ..types import TokenLogprob
from ._layout import Layout, layout
from .critical import KINDS, critical_spans
from .sequence import (
    DEFAULT_FIRST_K,
    DEFAULT_LOW_PROB,
    Analyzable,
    SequenceSummary,
    _check_options,
    as_tokens,
    summarize_stats,
)
from .spans import DEFAULT_SPAN_PROB, Span, Word, low_confidence_spans, merge_words
from .tokens import TokenStats, all_token_stats


def _word_start(w: Word) -> int:
    return w.token_start


def _word_end(w: Word) -> int:
    return w.token_end


@dataclass(frozen=True, slots=True)
class Analysis:
    """Everything :func:`analyze` computes for one token sequence."""

    tokens: tuple[TokenLogprob, ...]
    layout: Layout
    stats: tuple[TokenStats, ...]
    summary: SequenceSummary
    words: tuple[Word, ...]
    low_spans: tuple[Span, ...]
    critical: tuple[Span, ...]

    @property
    def text(self) -> str:
        return self.layout.text

    def words_in(self, span: Span) -> int:
        """Number of non-whitespace words inside ``span``.

        Words are in token order and do not overlap, so the ones inside a span are a contiguous
        run found by bisection: O(log n + words in the span), not a scan of the whole response
        per span (which made gating a 20k-token response take tens of seconds)."""
        words = self.words
        lo = bisect.bisect_left(words, span.token_start, key=_word_start)
        hi = bisect.bisect_right(words, span.token_end, lo=lo, key=_word_end)
        return sum(1 for w in words[lo:hi] if not w.is_space)

    def span_metrics(self) -> dict[str, float | None]:
        crit = [s.min_prob for s in self.critical if s.min_prob is not None]
        return {
            "critical_count": float(len(self.critical)),
            "critical_min_prob": min(crit) if crit else None,
            "longest_low_span_words": float(
                max((self.words_in(s) for s in self.low_spans), default=0)
            ),
            "low_span_count": float(len(self.low_spans)),
        }

    def metrics(self) -> dict[str, float | None]:
        """Summary metrics plus span metrics, by name (what policy rules read)."""
        return {**self.summary.metrics(), **self.span_metrics()}

    def word_of(self, token_index: int) -> Word | None:
        return next((w for w in self.words if w.token_start <= token_index < w.token_end), None)

    def to_dict(self) -> dict[str, Any]:
        return json_safe(
            {
                "text": self.text,
                "summary": self.summary.to_dict(),
                "low_spans": [s.to_dict() for s in self.low_spans],
                "critical": [s.to_dict() for s in self.critical],
            }
        )


def analyze(
    obj: Analyzable | Sequence[TokenLogprob],
    *,
    span_prob: float = DEFAULT_SPAN_PROB,
    critical_kinds: Sequence[str] = KINDS,
    first_k: int = DEFAULT_FIRST_K,
    low_prob: float = DEFAULT_LOW_PROB,
    vocab_size: int | None = None,
) -> Analysis:
    """Analyse tokens, a Choice, a Completion (first choice) or a ScoredText in one pass."""
    _check_options(first_k, low_prob)
    tokens = as_tokens(obj)
    lay = layout(tokens)
    stats = tuple(all_token_stats(tokens, vocab_size=vocab_size))
    words = tuple(merge_words(lay, stats))
    return Analysis(
        tokens=tokens,
        layout=lay,
        stats=stats,
        summary=summarize_stats(tokens, stats, first_k=first_k, low_prob=float(low_prob)),
        words=words,
        low_spans=tuple(low_confidence_spans(lay, stats, words, span_prob)),
        critical=tuple(critical_spans(lay, stats, critical_kinds)),
    )
