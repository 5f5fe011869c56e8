"""Rerank candidate continuations of one prompt by sequence probability.

All candidates are scored in one ``score_continuations`` call (the prompt is prefilled once). The
ranking uses the chosen normalisation; total and per-token logprobs are always reported, so a
caller can see where the two orders disagree (long candidates lose on total logprob).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .prompting import TextOrMessages, build_prompt, require_renderable
from .scoring import (
    Normalization,
    ScoredOption,
    check_normalization,
    check_options,
    finite,
    score_options,
)

if TYPE_CHECKING:
    from ..engines.base import Engine


@dataclass(frozen=True, slots=True)
class RankedCandidate:
    rank: int
    index: int
    option: ScoredOption

    def to_dict(self) -> dict[str, Any]:
        o = self.option
        return {
            "rank": self.rank,
            "index": self.index,
            "text": o.text,
            "logprob": finite(o.logprob),
            "mean_logprob": finite(o.mean_logprob),
            "logprob_per_char": finite(o.logprob / o.n_chars),
            "n_tokens": o.n_tokens,
            "score": finite(o.score),
            "prob": o.prob,
        }


@dataclass(frozen=True, slots=True)
class RerankResult:
    """Candidates best first under ``normalize`` (ties keep input order)."""

    ranked: tuple[RankedCandidate, ...]
    normalize: Normalization

    @property
    def best(self) -> str:
        return self.ranked[0].option.text

    @property
    def order(self) -> list[int]:
        """Input indices, best first."""
        return [r.index for r in self.ranked]

    def to_dict(self) -> dict[str, Any]:
        return {
            "best": self.best,
            "normalize": self.normalize,
            "order": self.order,
            "candidates": [r.to_dict() for r in self.ranked],
        }


def rerank(
    engine: Engine,
    prompt: TextOrMessages,
    candidates: Sequence[str],
    *,
    normalize: str = "tokens",
    chat: bool = False,
    candidate_prefix: str | None = None,
) -> RerankResult:
    """Order ``candidates`` by their (normalised) logprob as continuations of ``prompt``.

    ``candidate_prefix`` goes before each candidate (default: a space after a raw prompt,
    nothing after a chat prompt). ``prob`` is the softmax of the scores over the candidates.
    """
    cands = check_options(candidates, param="candidates", kind="candidate")
    norm = check_normalization(normalize)
    built = build_prompt(engine, prompt, chat=chat, option_prefix=candidate_prefix)
    require_renderable(built, "reranking")
    conts = [built.option_prefix + c for c in cands]
    scored = engine.score_continuations(built.engine_prompt, conts)
    options = score_options(cands, conts, scored, norm)
    order = sorted(range(len(options)), key=lambda i: (-options[i].score, i))
    ranked = tuple(RankedCandidate(r + 1, i, options[i]) for r, i in enumerate(order))
    return RerankResult(ranked, norm)


__all__ = ["RankedCandidate", "RerankResult", "rerank"]
