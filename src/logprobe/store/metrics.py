"""Derived numbers stored with each response, computed once at insert (numpy).

Over the generated tokens that have a logprob: ``sum``/``mean``/``min`` logprob, perplexity
``exp(-mean)`` (capped at :data:`PERPLEXITY_CAP` so it stays a finite number), mean entropy
(only when every scored token knows its entropy) and the count of tokens whose probability is
below :data:`LOW_CONFIDENCE`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..types import TokenLogprob, clamp_logprob

LOW_CONFIDENCE = 0.5
PERPLEXITY_CAP = 1e300


@dataclass(frozen=True, slots=True)
class Metrics:
    n_tokens: int
    n_scored: int
    sum_logprob: float | None
    mean_logprob: float | None
    min_logprob: float | None
    perplexity: float | None
    mean_entropy: float | None
    n_low_confidence: int

    def as_row(self) -> dict[str, float | int | None]:
        return {
            "n_tokens": self.n_tokens,
            "n_scored": self.n_scored,
            "sum_logprob": self.sum_logprob,
            "mean_logprob": self.mean_logprob,
            "min_logprob": self.min_logprob,
            "perplexity": self.perplexity,
            "mean_entropy": self.mean_entropy,
            "n_low_confidence": self.n_low_confidence,
        }


def compute(tokens: Sequence[TokenLogprob]) -> Metrics:
    """Metrics of a response's generated tokens."""
    lps = np.array(
        [clamp_logprob(t.logprob) for t in tokens if t.logprob is not None], dtype=np.float64
    )  # (n_scored,)
    n = int(lps.size)
    if n == 0:
        return Metrics(len(tokens), 0, None, None, None, None, None, 0)
    mean = float(lps.mean())
    entropies = [t.entropy for t in tokens if t.logprob is not None]
    mean_entropy = None
    if all(e is not None and math.isfinite(e) for e in entropies):
        mean_entropy = float(np.mean(np.array(entropies, dtype=np.float64)))
    return Metrics(
        n_tokens=len(tokens),
        n_scored=n,
        sum_logprob=float(lps.sum()),
        mean_logprob=mean,
        min_logprob=float(lps.min()),
        perplexity=perplexity(mean),
        mean_entropy=mean_entropy,
        n_low_confidence=int(np.count_nonzero(lps < math.log(LOW_CONFIDENCE))),
    )


def perplexity(mean_logprob: float) -> float:
    nll = -mean_logprob
    if nll >= math.log(PERPLEXITY_CAP):
        return PERPLEXITY_CAP
    return math.exp(nll)
