"""Per-sequence confidence: :func:`summarize` turns tokens into one :class:`SequenceSummary`.

Every statistic is over *scored* tokens (logprob known and valid; floored ``-9999`` values count,
with probability 0). Unscored (``None``) and invalid (NaN, positive) logprobs are counted and left
out. With no scored token every statistic is ``None``.

Length: ``sum_logprob`` and ``sequence_prob`` fall with every extra token, so they punish long
answers; ``mean_logprob``, ``perplexity``, ``logprob_per_char`` / ``logprob_per_byte`` normalise
by tokens, characters and bytes; quantiles of token probability (``prob_q10`` ...) and
``low_prob_share`` do not grow or shrink with length at all.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import Any

import numpy as np

from .._json import json_safe
from ..errors import InvalidRequestError
from ..types import Choice, Completion, ScoredText, TokenLogprob
from ._layout import token_raw
from .tokens import TokenStats, all_token_stats

QUANTILES = (0.05, 0.10, 0.25, 0.50)
DEFAULT_FIRST_K = 3
DEFAULT_LOW_PROB = 0.5
_MAX_EXP = 700.0  # exp() of more overflows a float

Analyzable = Sequence[TokenLogprob] | Choice | Completion | ScoredText


def as_tokens(obj: Analyzable) -> tuple[TokenLogprob, ...]:
    """The tokens of a token list, :class:`Choice`, :class:`Completion` (its first choice) or
    :class:`ScoredText`; raises :class:`InvalidRequestError` for anything else."""
    if isinstance(obj, Completion):
        if not obj.choices:
            raise InvalidRequestError("completion has no choices to analyse", param="choices")
        return obj.choices[0].tokens
    if isinstance(obj, (Choice, ScoredText)):
        return obj.tokens
    if isinstance(obj, (str, bytes)) or not isinstance(obj, Sequence):
        raise InvalidRequestError(
            f"expected tokens, a Choice or a Completion, got {type(obj).__name__}", param="tokens"
        )
    for i, t in enumerate(obj):
        if not isinstance(t, TokenLogprob):
            raise InvalidRequestError(
                f"tokens[{i}] is a {type(t).__name__}, not a TokenLogprob", param=f"tokens[{i}]"
            )
    return tuple(obj)


def _exp(x: float) -> float:
    return math.inf if x > _MAX_EXP else math.exp(x)


@dataclass(frozen=True, slots=True)
class SequenceSummary:
    """Sequence-level confidence numbers (nats; ``None`` = undefined). ``to_dict`` is JSON-safe."""

    n_tokens: int
    n_scored: int
    n_unscored: int
    n_invalid: int
    n_floored: int
    n_chars: int
    n_bytes: int
    sum_logprob: float | None
    mean_logprob: float | None
    min_logprob: float | None
    max_logprob: float | None
    logprob_q05: float | None
    logprob_q10: float | None
    logprob_q25: float | None
    logprob_q50: float | None
    sequence_prob: float | None
    geometric_mean_prob: float | None
    mean_prob: float | None
    min_prob: float | None
    prob_q05: float | None
    prob_q10: float | None
    prob_q25: float | None
    prob_q50: float | None
    perplexity: float | None
    log_perplexity: float | None
    logprob_per_char: float | None
    logprob_per_byte: float | None
    low_prob: float
    low_prob_share: float | None
    mean_entropy: float | None
    max_entropy: float | None
    entropy_kind: str | None  # "exact", "lower_bound", "mixed" or None
    mean_margin: float | None
    min_margin: float | None
    top1_share: float | None
    first_k: int
    first_k_mean_logprob: float | None
    first_k_min_prob: float | None

    def to_dict(self) -> dict[str, Any]:
        """All fields; NaN/inf (an overflowing perplexity) become ``None``."""
        return json_safe({f.name: getattr(self, f.name) for f in fields(self)})

    def metrics(self) -> dict[str, float | None]:
        """The numeric fields by name (for policies), floats or ``None``."""
        return {
            f.name: (None if getattr(self, f.name) is None else float(getattr(self, f.name)))
            for f in fields(self)
            if f.name != "entropy_kind"
        }


def _quantiles(values: np.ndarray) -> list[float | None]:
    if values.size == 0:
        return [None] * len(QUANTILES)
    return [float(q) for q in np.quantile(values, QUANTILES)]


def _entropy_fields(stats: Sequence[TokenStats]) -> tuple[float | None, float | None, str | None]:
    ent = [s for s in stats if s.entropy is not None]
    if not ent:
        return None, None, None
    values = np.array([s.entropy for s in ent], dtype=np.float64)
    n_exact = sum(1 for s in ent if s.entropy_exact)
    kind = "exact" if n_exact == len(ent) else "lower_bound" if n_exact == 0 else "mixed"
    return float(values.mean()), float(values.max()), kind


def _share(flags: Sequence[bool]) -> float | None:
    return None if not flags else sum(flags) / len(flags)


def _text_size(tokens: Sequence[TokenLogprob]) -> tuple[int, int]:
    """Characters (leading whitespace not counted, as in lm-eval's acc_norm) and bytes."""
    raw = b"".join(token_raw(t) for t in tokens)
    return len(raw.decode("utf-8", errors="replace").lstrip()), len(raw)


def summarize_stats(
    tokens: Sequence[TokenLogprob],
    stats: Sequence[TokenStats],
    *,
    first_k: int = DEFAULT_FIRST_K,
    low_prob: float = DEFAULT_LOW_PROB,
) -> SequenceSummary:
    """Build the summary from already computed :class:`TokenStats`."""
    scored = [s for s in stats if s.logprob is not None]
    lp = np.array([s.logprob for s in scored], dtype=np.float64)  # (n_scored,)
    prob = np.exp(lp)
    n = int(lp.size)
    n_chars, n_bytes = _text_size(tokens)
    total = float(lp.sum()) if n else None
    mean = total / n if total is not None else None
    lq, pq = _quantiles(lp), _quantiles(prob)
    mean_h, max_h, kind = _entropy_fields(stats)
    margins = [s.margin for s in stats if s.margin is not None]
    ranks = [s.rank == 1 for s in stats if s.rank is not None and s.logprob is not None]
    head = lp[:first_k]
    return SequenceSummary(
        n_tokens=len(stats),
        n_scored=n,
        n_unscored=sum(1 for s in stats if s.status == "unscored"),
        n_invalid=sum(1 for s in stats if s.status == "invalid"),
        n_floored=sum(1 for s in stats if s.status == "floored"),
        n_chars=n_chars,
        n_bytes=n_bytes,
        sum_logprob=total,
        mean_logprob=mean,
        min_logprob=float(lp.min()) if n else None,
        max_logprob=float(lp.max()) if n else None,
        logprob_q05=lq[0],
        logprob_q10=lq[1],
        logprob_q25=lq[2],
        logprob_q50=lq[3],
        sequence_prob=math.exp(total) if total is not None else None,
        geometric_mean_prob=math.exp(mean) if mean is not None else None,
        mean_prob=float(prob.mean()) if n else None,
        min_prob=float(prob.min()) if n else None,
        prob_q05=pq[0],
        prob_q10=pq[1],
        prob_q25=pq[2],
        prob_q50=pq[3],
        perplexity=_exp(-mean) if mean is not None else None,
        log_perplexity=-mean if mean is not None else None,
        logprob_per_char=total / n_chars if total is not None and n_chars else None,
        logprob_per_byte=total / n_bytes if total is not None and n_bytes else None,
        low_prob=low_prob,
        low_prob_share=float((prob < low_prob).mean()) if n else None,
        mean_entropy=mean_h,
        max_entropy=max_h,
        entropy_kind=kind,
        mean_margin=float(np.mean(margins)) if margins else None,
        min_margin=float(np.min(margins)) if margins else None,
        top1_share=_share(ranks),
        first_k=first_k,
        first_k_mean_logprob=float(head.mean()) if head.size else None,
        first_k_min_prob=float(np.exp(head.min())) if head.size else None,
    )


def _check_options(first_k: int, low_prob: float) -> None:
    if isinstance(first_k, bool) or not isinstance(first_k, int) or first_k < 1:
        raise InvalidRequestError(
            f"first_k must be an integer >= 1, got {first_k!r}", param="first_k"
        )
    if not isinstance(low_prob, (int, float)) or not 0.0 < float(low_prob) <= 1.0:
        raise InvalidRequestError(f"low_prob must be in (0, 1], got {low_prob!r}", param="low_prob")


def summarize(
    obj: Analyzable,
    *,
    first_k: int = DEFAULT_FIRST_K,
    low_prob: float = DEFAULT_LOW_PROB,
    vocab_size: int | None = None,
) -> SequenceSummary:
    """Summarise the confidence of a token list, :class:`Choice`, :class:`Completion` (first
    choice) or :class:`ScoredText`.

    ``first_k``: how many leading scored tokens ``first_k_*`` look at. ``low_prob``: the
    probability under which a token counts toward ``low_prob_share``. ``vocab_size``: enables
    entropy upper bounds (not part of the summary; see :func:`token_stats`).
    """
    _check_options(first_k, low_prob)
    tokens = as_tokens(obj)
    stats = all_token_stats(tokens, vocab_size=vocab_size)
    return summarize_stats(tokens, stats, first_k=first_k, low_prob=float(low_prob))
