"""Scoring options by sequence logprob: normalisations, softmax over a set, margins.

Pure numpy; every task that compares several continuations of one prompt (classify, choose,
rerank, multiple-choice evaluation) reads its numbers from here, so the three normalisations are
defined once:

* ``"none"``   score = sum of the continuation's token logprobs (the exact log-probability of the
  continuation; a softmax over these is the model's exact distribution restricted to the set);
* ``"tokens"`` score = sum / number of tokens (SGLang-style, per-token average);
* ``"chars"``  score = sum / number of characters of the option, leading whitespace not counted
  (lm-evaluation-harness ``acc_norm`` / lighteval ``nospace``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from ..errors import InvalidRequestError
from ..types import LOGPROB_FLOOR, ScoredText, TokenLogprob

Normalization = Literal["none", "tokens", "chars"]
NORMALIZATIONS: tuple[Normalization, ...] = ("none", "tokens", "chars")


def check_normalization(value: str, *, param: str = "normalize") -> Normalization:
    """Return ``value`` as a :data:`Normalization` or raise naming the allowed values."""
    if value not in NORMALIZATIONS:
        raise InvalidRequestError(
            f"Invalid '{param}': expected one of {', '.join(NORMALIZATIONS)}, got {value!r}.",
            param=param,
        )
    return value  # type: ignore[return-value]


def char_length(option: str) -> int:
    """Characters of ``option`` without its leading whitespace (at least 1)."""
    return max(1, len(option.lstrip()))


def normalized_score(total: float, n_tokens: int, n_chars: int, normalize: Normalization) -> float:
    """The score of one option under ``normalize`` (see the module docstring)."""
    if normalize == "none":
        return total
    if normalize == "tokens":
        return total / max(1, n_tokens)
    return total / max(1, n_chars)


def softmax(scores: Sequence[float]) -> np.ndarray:
    """Numerically stable softmax in float64; shape (k,) -> (k,), sums to 1."""
    x = np.asarray(scores, dtype=np.float64)
    if x.size == 0:
        return x
    z = x - np.max(x)
    e = np.exp(z)
    return e / e.sum()


def logsumexp(values: Sequence[float]) -> float:
    x = np.asarray(values, dtype=np.float64)
    if x.size == 0:
        return LOGPROB_FLOOR
    m = float(np.max(x))
    return m + math.log(float(np.exp(x - m).sum()))


def finite(value: float) -> float:
    """``value`` with -inf/NaN mapped to :data:`LOGPROB_FLOOR` (JSON never sees them)."""
    if math.isnan(value) or value < LOGPROB_FLOOR:
        return LOGPROB_FLOOR
    return float(value)


@dataclass(frozen=True, slots=True)
class ScoredOption:
    """One option (label, choice, candidate) scored as a continuation of a shared prompt."""

    text: str
    continuation: str
    logprob: float
    n_tokens: int
    n_chars: int
    score: float
    prob: float
    tokens: tuple[TokenLogprob, ...] = ()

    @property
    def mean_logprob(self) -> float:
        return self.logprob / max(1, self.n_tokens)

    def to_dict(self, *, with_tokens: bool = False) -> dict[str, Any]:
        d: dict[str, Any] = {
            "text": self.text,
            "continuation": self.continuation,
            "logprob": finite(self.logprob),
            "n_tokens": self.n_tokens,
            "n_chars": self.n_chars,
            "score": finite(self.score),
            "prob": self.prob,
        }
        if with_tokens:
            d["tokens"] = [t.to_dict() for t in self.tokens]
        return d


def score_options(
    texts: Sequence[str],
    continuations: Sequence[str],
    scored: Sequence[ScoredText],
    normalize: Normalization,
) -> list[ScoredOption]:
    """Turn engine scores of ``continuations`` into options with normalised scores and a softmax.

    ``texts`` are the options as the user wrote them (what ``chars`` counts); ``continuations``
    are what was scored (e.g. with a leading space).
    """
    totals = [s.logprob for s in scored]
    n_tok = [max(1, s.n_scored) for s in scored]
    n_chr = [char_length(t) for t in texts]
    scores = [
        normalized_score(t, n, c, normalize) for t, n, c in zip(totals, n_tok, n_chr, strict=False)
    ]
    probs = softmax(scores)
    return [
        ScoredOption(
            text=text,
            continuation=cont,
            logprob=total,
            n_tokens=n,
            n_chars=c,
            score=score,
            prob=float(p),
            tokens=s.tokens,
        )
        for text, cont, total, n, c, score, p, s in zip(
            texts, continuations, totals, n_tok, n_chr, scores, probs, scored, strict=False
        )
    ]


def top_two_margin(probs: Sequence[float]) -> float:
    """Probability of the best option minus that of the runner-up (1.0 with a single option)."""
    p = sorted((float(x) for x in probs), reverse=True)
    if not p:
        return 0.0
    return p[0] - (p[1] if len(p) > 1 else 0.0)


def check_options(options: Sequence[str], *, param: str, kind: str) -> list[str]:
    """Validate a list of options: a non-empty list of non-blank, distinct strings."""
    if isinstance(options, str):
        raise InvalidRequestError(
            f"Invalid '{param}': expected a list of {kind}s, got a single string.", param=param
        )
    opts = list(options)
    if not opts:
        raise InvalidRequestError(
            f"Invalid '{param}': at least one {kind} is required.", param=param
        )
    seen: dict[str, int] = {}
    for i, o in enumerate(opts):
        if not isinstance(o, str):
            raise InvalidRequestError(
                f"Invalid '{param}': {kind} {i} is {type(o).__name__}, expected a string.",
                param=param,
            )
        if not o.strip():
            raise InvalidRequestError(
                f"Invalid '{param}': {kind} {i} is empty or blank.", param=param
            )
        if o in seen:
            raise InvalidRequestError(
                f"Invalid '{param}': duplicate {kind} {o!r} (positions {seen[o]} and {i}).",
                param=param,
            )
        seen[o] = i
    return opts


__all__ = [
    "NORMALIZATIONS",
    "Normalization",
    "ScoredOption",
    "char_length",
    "check_normalization",
    "check_options",
    "finite",
    "logsumexp",
    "normalized_score",
    "score_options",
    "softmax",
    "top_two_margin",
]
