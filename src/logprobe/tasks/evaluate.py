"""Likelihood evaluation: log-likelihood of continuations, rolling perplexity of documents, and
multiple-choice accuracy (lm-evaluation-harness / lighteval conventions, written down here).

Multiple choice: every choice is scored as the continuation ``choice_prefix + choice`` (default
``" "``) of the query (or of the query rendered as a user message with ``chat_template=True``).
Three predictions per item, all reported:

* ``acc``               argmax of the sum of the choice's token logprobs;
* ``acc_norm_tokens``   argmax of that sum divided by the choice's token count;
* ``acc_norm_chars``    argmax of that sum divided by the choice's length in characters, the
                        leading space not counted (lighteval ``loglikelihood_acc_norm_nospace``).

Standard errors are binomial, ``sqrt(p (1 - p) / n)``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import ContextOverflowError, InvalidRequestError
from ..types import ScoredText
from .datasets import MCItem
from .prompting import build_prompt, require_renderable
from .runner import ordered_map
from .scoring import char_length, finite

if TYPE_CHECKING:
    from ..engines.base import Engine, LocalEngine

METRICS = ("acc", "acc_norm_tokens", "acc_norm_chars")


# --- log-likelihood ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Loglikelihood:
    """``logprob`` of a continuation after a context; ``is_greedy`` = every token was the argmax."""

    logprob: float
    n_tokens: int
    is_greedy: bool | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "logprob": finite(self.logprob),
            "n_tokens": self.n_tokens,
            "is_greedy": self.is_greedy,
        }


def _to_loglikelihood(s: ScoredText) -> Loglikelihood:
    ranks = [t.rank for t in s.tokens if t.logprob is not None]
    greedy = None if any(r is None for r in ranks) else all(r == 1 for r in ranks)
    return Loglikelihood(s.logprob, s.n_scored, greedy)


def loglikelihood(
    engine: Engine, context: str, continuations: Sequence[str]
) -> list[Loglikelihood]:
    """Log-likelihood of each continuation after ``context`` (context prefilled once)."""
    if not continuations:
        raise InvalidRequestError("Invalid 'continuations': none given.", param="continuations")
    if any(not isinstance(c, str) or not c for c in continuations):
        raise InvalidRequestError(
            "Invalid 'continuations': every continuation must be a non-empty string.",
            param="continuations",
        )
    return [_to_loglikelihood(s) for s in engine.score_continuations(context, list(continuations))]


# --- rolling perplexity -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Perplexity:
    """Log-likelihood of a whole document; ``n_tokens`` counts the tokens that were predicted."""

    logprob: float
    n_tokens: int
    n_bytes: int
    windows: int

    @property
    def perplexity(self) -> float:
        return math.exp(-self.logprob / self.n_tokens) if self.n_tokens else 1.0

    @property
    def bits_per_byte(self) -> float:
        return -self.logprob / math.log(2) / self.n_bytes if self.n_bytes else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "logprob": finite(self.logprob),
            "n_tokens": self.n_tokens,
            "n_bytes": self.n_bytes,
            "perplexity": self.perplexity,
            "bits_per_byte": self.bits_per_byte,
            "windows": self.windows,
        }


def rolling_perplexity(engine: LocalEngine, text: str, *, window: int | None = None) -> Perplexity:
    """Perplexity of ``text``; a document longer than ``window`` tokens (default: half the
    context) is cut at word boundaries into windows, each scored after up to ``window`` preceding
    tokens of context. The first token has no context and is not counted."""
    if not isinstance(text, str) or not text.strip():
        raise InvalidRequestError("Invalid 'text': the document is empty.", param="text")
    n_ctx = int(engine.n_ctx)
    w = window or max(16, n_ctx // 2)
    if w >= n_ctx:
        raise ContextOverflowError(
            f"window {w} must be below the context size {n_ctx}.", param="window"
        )
    ids = list(engine.tokenize(text))
    chunks = _chunks(engine, ids, w)
    total, n = 0.0, 0
    for start, end in chunks:
        chunk_text = _decode(engine, ids[start:end])
        ctx = ids[max(0, start - w) : start]
        scored = engine.score(chunk_text, prompt=ctx) if ctx else engine.score(chunk_text)
        total += scored.logprob
        n += scored.n_scored
    return Perplexity(total, n, len(text.encode("utf-8")), len(chunks))


def _decode(engine: LocalEngine, ids: Sequence[int]) -> str:
    return b"".join(engine.token_bytes(i) for i in ids).decode("utf-8", errors="replace")


def _chunks(engine: LocalEngine, ids: list[int], w: int) -> list[tuple[int, int]]:
    """[start, end) token ranges of at most ``w`` tokens, cut before tokens that begin a word
    (so each chunk re-tokenizes as it was) when one is near the end of the range."""
    out: list[tuple[int, int]] = []
    start = 0
    while start < len(ids):
        end = min(len(ids), start + w)
        if end < len(ids):
            for cut in range(end, start + w // 2, -1):
                if engine.token_bytes(ids[cut])[:1] in (b" ", b"\n"):
                    end = cut
                    break
        out.append((start, end))
        start = end
    return out


# --- multiple choice --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MCResult:
    """Scores of one item's choices and the three predictions."""

    item: MCItem
    logprobs: tuple[float, ...]
    n_tokens: tuple[int, ...]
    n_chars: tuple[int, ...]

    def prediction(self, metric: str) -> int:
        lp = np.asarray(self.logprobs, dtype=np.float64)
        if metric == "acc":
            return int(np.argmax(lp))
        if metric == "acc_norm_tokens":
            return int(np.argmax(lp / np.maximum(1, np.asarray(self.n_tokens))))
        if metric == "acc_norm_chars":
            return int(np.argmax(lp / np.maximum(1, np.asarray(self.n_chars))))
        raise InvalidRequestError(f"unknown metric {metric!r}", param="metric")

    def to_dict(self) -> dict[str, Any]:
        return {
            "line": self.item.line,
            **({"meta": dict(self.item.meta)} if self.item.meta else {}),
            "gold": self.item.gold,
            "logprobs": [finite(x) for x in self.logprobs],
            "n_tokens": list(self.n_tokens),
            "n_chars": list(self.n_chars),
            **{f"pred_{m}": self.prediction(m) for m in METRICS},
        }


@dataclass(frozen=True, slots=True)
class MCReport:
    results: tuple[MCResult, ...]
    skipped: tuple[tuple[int, str], ...] = ()

    @property
    def n(self) -> int:
        return len(self.results)

    def accuracy(self, metric: str) -> float:
        if not self.results:
            return 0.0
        return sum(r.prediction(metric) == r.item.gold for r in self.results) / self.n

    def stderr(self, metric: str) -> float:
        p = self.accuracy(metric)
        return math.sqrt(p * (1 - p) / self.n) if self.n else 0.0

    def metrics(self) -> dict[str, float]:
        out: dict[str, float] = {}
        for m in METRICS:
            out[m] = self.accuracy(m)
            out[f"{m}_stderr"] = self.stderr(m)
        return out

    def to_dict(self, *, with_items: bool = False) -> dict[str, Any]:
        d: dict[str, Any] = {
            "n": self.n,
            **self.metrics(),
            "skipped": [{"line": ln, "error": e} for ln, e in self.skipped],
        }
        if with_items:
            d["items"] = [r.to_dict() for r in self.results]
        return d


def mc_prompt(engine: Engine, query: str, *, chat_template: bool) -> str | list[int]:
    """The prompt handed to the engine: the query, or its chat rendering as token ids."""
    if chat_template:
        built = build_prompt(engine, [{"role": "user", "content": query}])
        require_renderable(built, "multiple-choice scoring")
        return built.engine_prompt
    return query


def score_mc_item(
    engine: Engine, item: MCItem, *, chat_template: bool = False, choice_prefix: str = " "
) -> MCResult:
    """Score every choice of ``item`` as a continuation of its query (query prefilled once)."""
    prompt = mc_prompt(engine, item.query, chat_template=chat_template)
    scored = engine.score_continuations(prompt, [choice_prefix + c for c in item.choices])
    return MCResult(
        item=item,
        logprobs=tuple(s.logprob for s in scored),
        n_tokens=tuple(max(1, s.n_scored) for s in scored),
        n_chars=tuple(char_length(c) for c in item.choices),
    )


def multiple_choice(
    engine: Any,
    items: Iterable[MCItem],
    *,
    chat_template: bool = False,
    choice_prefix: str = " ",
    workers: int = 2,
    on_item: Callable[[MCItem, MCResult | None, str | None], None] | None = None,
) -> MCReport:
    """Accuracy (raw, per-token, per-character) over ``items``; items the engine rejects (e.g.
    too long for the context) are skipped and listed, not fatal. ``on_item(item, result,
    error)`` runs after each item, in input order (progress, incremental output)."""

    def work(item: MCItem) -> MCResult:
        return score_mc_item(engine, item, chat_template=chat_template, choice_prefix=choice_prefix)

    results: list[MCResult] = []
    skipped: list[tuple[int, str]] = []
    for outcome in ordered_map(work, items, workers=workers):
        if outcome.result is None:
            skipped.append((outcome.item.line, outcome.error or "failed"))
        else:
            results.append(outcome.result)
        if on_item:
            on_item(outcome.item, outcome.result, outcome.error)
    return MCReport(tuple(results), tuple(skipped))


__all__ = [
    "METRICS",
    "Loglikelihood",
    "MCReport",
    "MCResult",
    "Perplexity",
    "loglikelihood",
    "mc_prompt",
    "multiple_choice",
    "rolling_perplexity",
    "score_mc_item",
]
