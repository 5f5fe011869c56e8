"""Retrieval evaluation: how relevant is each candidate passage to a question?

Three scores per candidate, all from likelihoods (no generation):

* **judgement** ``p_yes``: the question and passage go into a yes/no prompt sent as a user chat
  message, and the replies ``Yes`` / ``No`` are scored as continuations (label likelihood, as
  :func:`classify`); ``p_yes = P(Yes) / (P(Yes) + P(No))``, mapped through a calibrator when
  one is given (on 20 WikiQA dev questions the chat form ranked better than a raw prompt);
* **query likelihood** ``ql``: ``log P(question | passage)``, the question scored as the
  continuation of a prompt holding the passage (the classic language-model retrieval score;
  it needs scoring only). ``ql_posterior`` is its softmax over the candidates: the probability
  that the question was asked about this passage, with a uniform prior over the candidates;
* **combined**: ``z(logit p_yes) + weight * z(ql)``, each score standardised over the question's
  candidates (so neither scale dominates); ranking only.

The default ranking is query likelihood: on 60 WikiQA test questions it ranked best with the
embedded 135M model (MAP 0.69, against 0.43 for the judgement and 0.66 combined; see
``docs/experiments/applications.md``). Duplicate passages are allowed.

:func:`support` is the RAG-side check: does a passage support a proposed answer (yes/no label
likelihood, calibrated when a calibrator is given).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from ..errors import InvalidRequestError
from .classify import classify
from .prompting import fill_template
from .runner import ordered_map
from .scoring import finite, softmax

if TYPE_CHECKING:
    from ..engines.base import Engine

Method = Literal["judge", "ql", "combined"]
METHODS: tuple[Method, ...] = ("judge", "ql", "combined")

JUDGE_TEMPLATE = (
    "Question: {question}\nPassage: {passage}\n"
    "Does the passage answer the question? Answer Yes or No."
)
QL_TEMPLATE = "Passage: {passage}\nA question that this passage answers:"
SUPPORT_TEMPLATE = (
    "Passage: {passage}\nQuestion: {question}\nProposed answer: {answer}\n"
    "Does the passage support the proposed answer? Answer Yes or No."
)
YES_NO = ("Yes", "No")


@dataclass(frozen=True, slots=True)
class ScoredCandidate:
    """One candidate passage with its three scores; ``rank`` is 1-based under the method."""

    index: int
    passage: str
    p_yes: float
    raw_p_yes: float
    ql_logprob: float
    ql_tokens: int
    ql_posterior: float
    combined: float
    rank: int = 0

    def score(self, method: Method) -> float:
        if method == "judge":
            return self.p_yes
        if method == "ql":
            return self.ql_logprob
        return self.combined

    def to_dict(self) -> dict[str, Any]:
        return {
            "rank": self.rank,
            "index": self.index,
            "passage": self.passage,
            "p_yes": self.p_yes,
            "raw_p_yes": self.raw_p_yes,
            "ql_logprob": finite(self.ql_logprob),
            "ql_tokens": self.ql_tokens,
            "ql_mean_logprob": finite(self.ql_logprob / max(1, self.ql_tokens)),
            "ql_posterior": self.ql_posterior,
            "combined": self.combined,
        }


@dataclass(frozen=True, slots=True)
class RelevanceResult:
    """Candidates best first under ``method`` (ties keep input order)."""

    question: str
    method: Method
    ranked: tuple[ScoredCandidate, ...]
    calibrated: bool

    @property
    def order(self) -> list[int]:
        return [c.index for c in self.ranked]

    def scores(self, method: Method | None = None) -> list[float]:
        """The scores under ``method`` (default: the result's) in input order."""
        by_index = sorted(self.ranked, key=lambda c: c.index)
        return [c.score(method or self.method) for c in by_index]

    def to_dict(self) -> dict[str, Any]:
        return {
            "question": self.question,
            "method": self.method,
            "calibrated": self.calibrated,
            "order": self.order,
            "candidates": [c.to_dict() for c in self.ranked],
        }


def check_method(method: str) -> Method:
    if method not in METHODS:
        raise InvalidRequestError(
            f"Invalid 'method': expected one of {', '.join(METHODS)}, got {method!r}.",
            param="method",
        )
    return method  # type: ignore[return-value]


def check_passages(passages: Sequence[str]) -> list[str]:
    """A non-empty list of non-blank strings; duplicates are allowed (retrieval results and
    WikiQA candidate lists repeat sentences)."""
    if isinstance(passages, str):
        raise InvalidRequestError(
            "Invalid 'passages': expected a list of passages, got a single string.",
            param="passages",
        )
    cands = list(passages)
    if not cands:
        raise InvalidRequestError(
            "Invalid 'passages': at least one passage is required.", param="passages"
        )
    for i, c in enumerate(cands):
        if not isinstance(c, str) or not c.strip():
            raise InvalidRequestError(
                f"Invalid 'passages': passage {i} is empty or not a string.", param="passages"
            )
    return cands


def _check_text(value: Any, param: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidRequestError(f"Invalid '{param}': it is empty.", param=param)
    return value


def _calibrate(calibrator: Any | None, p: float) -> float:
    if calibrator is None:
        return p
    return min(1.0, max(0.0, float(calibrator.apply(float(p)))))


def judge(engine: Engine, question: str, passage: str, *, template: str = JUDGE_TEMPLATE) -> float:
    """Raw ``P(yes)`` of the yes/no judgement that ``passage`` answers ``question``."""
    prompt = fill_template(
        template.replace("{passage}", "{text}"),
        param="judge_template",
        text=passage,
        question=question,
    )
    return _p_yes(engine, prompt)


def _p_yes(engine: Engine, prompt: str) -> float:
    """``P(Yes) / (P(Yes) + P(No))`` as the assistant's reply to ``prompt`` (chat template)."""
    result = classify(engine, prompt, list(YES_NO), template=None, chat=True)
    return float(result.probs[YES_NO[0]])


def query_logprob(
    engine: Engine, question: str, passage: str, *, template: str = QL_TEMPLATE
) -> tuple[float, int]:
    """``log P(question | passage)`` (summed over the question's tokens) and the token count."""
    prompt = fill_template(
        template.replace("{passage}", "{text}"), param="ql_template", text=passage
    )
    scored = engine.score_continuations(prompt, [" " + question.strip()])[0]
    return float(scored.logprob), int(scored.n_scored)


def _zscore(values: Sequence[float]) -> np.ndarray:
    x = np.asarray(values, dtype=np.float64)
    sd = float(x.std())
    return np.zeros_like(x) if sd <= 1e-12 else (x - x.mean()) / sd


def _logit(p: float) -> float:
    q = min(1 - 1e-9, max(1e-9, p))
    return math.log(q / (1 - q))


def relevance(
    engine: Engine,
    question: str,
    passages: Sequence[str],
    *,
    method: str = "ql",
    calibrator: Any | None = None,
    weight: float = 1.0,
    judge_template: str = JUDGE_TEMPLATE,
    ql_template: str = QL_TEMPLATE,
    workers: int = 4,
) -> RelevanceResult:
    """Score and rank ``passages`` for ``question`` (see the module docstring).

    ``calibrator`` (anything with ``apply(p) -> p``, e.g. a Platt map fitted on labelled pairs)
    maps the raw ``P(yes)``; ``weight`` is the query likelihood's share in ``combined``.
    Candidates are scored concurrently (``workers`` at once; the engine batches them).
    """
    _check_text(question, "question")
    cands = check_passages(passages)
    how = check_method(method)
    if not math.isfinite(weight) or weight < 0:
        raise InvalidRequestError(
            f"Invalid 'weight': expected a number >= 0, got {weight!r}.", param="weight"
        )

    def one(passage: str) -> tuple[float, float, int]:
        lp, n = query_logprob(engine, question, passage, template=ql_template)
        return judge(engine, question, passage, template=judge_template), lp, n

    rows = []
    for outcome in ordered_map(one, cands, workers=max(1, min(workers, len(cands)))):
        if outcome.result is None:
            raise InvalidRequestError(
                f"passage {cands.index(outcome.item)}: {outcome.error}", param="passages"
            )
        rows.append(outcome.result)
    return _rank(question, cands, rows, how, calibrator, weight)


def _rank(
    question: str,
    cands: list[str],
    rows: list[tuple[float, float, int]],
    how: Method,
    calibrator: Any | None,
    weight: float,
) -> RelevanceResult:
    raw = [r[0] for r in rows]
    ql = [r[1] for r in rows]
    post = softmax(ql)
    comb = _zscore([_logit(p) for p in raw]) + weight * _zscore(ql)
    scored = [
        ScoredCandidate(
            i,
            cands[i],
            _calibrate(calibrator, raw[i]),
            raw[i],
            ql[i],
            rows[i][2],
            float(post[i]),
            float(comb[i]),
        )
        for i in range(len(cands))
    ]
    order = sorted(range(len(scored)), key=lambda i: (-scored[i].score(how), i))
    ranked = tuple(
        ScoredCandidate(**{**_fields(scored[i]), "rank": r + 1}) for r, i in enumerate(order)
    )
    return RelevanceResult(question, how, ranked, calibrator is not None)


def _fields(c: ScoredCandidate) -> dict[str, Any]:
    return {name: getattr(c, name) for name in ScoredCandidate.__slots__}  # type: ignore[attr-defined]


# --- baselines -------------------------------------------------------------------------------

_WORD = re.compile(r"[a-z0-9]+")
STOPWORDS = frozenset(
    {
        "a",
        "an",
        "the",
        "of",
        "in",
        "on",
        "at",
        "to",
        "for",
        "from",
        "by",
        "with",
        "and",
        "or",
        "is",
        "are",
        "was",
        "were",
        "be",
        "been",
        "what",
        "who",
        "whom",
        "which",
        "when",
        "where",
        "why",
        "how",
        "does",
        "do",
        "did",
        "it",
        "its",
        "this",
        "that",
        "as",
    }
)


def content_words(text: str) -> set[str]:
    """Lower-cased alphanumeric words of ``text`` without a small stop-word list."""
    return {w for w in _WORD.findall(text.lower()) if w not in STOPWORDS}


def word_overlap(question: str, passage: str) -> float:
    """Baseline score: how many of the question's content words the passage contains."""
    return float(len(content_words(question) & content_words(passage)))


# --- RAG support check -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SupportResult:
    """Whether ``passage`` supports ``answer``: calibrated and raw ``P(yes)`` and the verdict."""

    p_supported: float
    raw_p_supported: float
    supported: bool
    calibrated: bool
    threshold: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "p_supported": self.p_supported,
            "raw_p_supported": self.raw_p_supported,
            "supported": self.supported,
            "calibrated": self.calibrated,
            "threshold": self.threshold,
        }


def support(
    engine: Engine,
    passage: str,
    answer: str,
    *,
    question: str = "(not given)",
    calibrator: Any | None = None,
    threshold: float = 0.5,
    template: str = SUPPORT_TEMPLATE,
) -> SupportResult:
    """``P(passage supports answer)`` by yes/no label likelihood; ``supported`` when the
    (calibrated) probability is at least ``threshold``."""
    _check_text(passage, "passage")
    _check_text(answer, "answer")
    if not 0.0 <= threshold <= 1.0:
        raise InvalidRequestError(
            f"Invalid 'threshold': expected 0..1, got {threshold!r}.", param="threshold"
        )
    prompt = fill_template(
        template.replace("{passage}", "{text}"),
        param="support_template",
        text=passage,
        question=question,
        answer=answer,
    )
    raw = _p_yes(engine, prompt)
    p = _calibrate(calibrator, raw)
    return SupportResult(p, raw, p >= threshold, calibrator is not None, threshold)


__all__ = [
    "JUDGE_TEMPLATE",
    "METHODS",
    "QL_TEMPLATE",
    "SUPPORT_TEMPLATE",
    "RelevanceResult",
    "ScoredCandidate",
    "SupportResult",
    "content_words",
    "judge",
    "query_logprob",
    "relevance",
    "support",
    "word_overlap",
]
