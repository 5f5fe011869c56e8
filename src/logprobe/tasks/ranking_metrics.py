"""Ranking metrics against qrels-style labels: MAP, MRR, nDCG@k, P@1 (pure numpy).

A *run* gives each question's candidates a score (higher = more relevant); *qrels* give each
candidate a relevance grade (0 = not relevant; binary data uses 0/1). Candidates are sorted by
score, descending, ties kept in input order (a stable sort), and per question:

* AP    = mean over the relevant candidates of the precision at that candidate's rank;
* RR    = 1 / rank of the first relevant candidate;
* nDCG@k = DCG@k / ideal DCG@k, with gain ``2**grade - 1`` and discount ``log2(rank + 1)``;
* P@1   = 1 when the top candidate is relevant.

MAP/MRR/nDCG are the means over the questions that are kept: by default (``filtered=True``, the
answer-sentence-selection convention of WikiQA's ``*-filtered.ref``) questions with no relevant
candidate or with only relevant candidates are left out. ``read_trec_qrels`` /
``read_trec_run`` read TREC files (``qid 0 docid grade`` / ``qid Q0 docid rank score tag``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InvalidRequestError

Qrels = Mapping[str, Mapping[str, float]]
Run = Mapping[str, Mapping[str, float]]


def _ranked_grades(scores: Sequence[float], grades: Sequence[float]) -> np.ndarray:
    """Grades in ranked order: by score descending, ties in input order."""
    s = np.asarray(scores, dtype=np.float64)
    order = np.argsort(-s, kind="stable")
    return np.asarray(grades, dtype=np.float64)[order]


def average_precision(scores: Sequence[float], grades: Sequence[float]) -> float:
    """AP of one ranked list (0.0 when nothing is relevant)."""
    rel = _ranked_grades(scores, grades) > 0
    if not rel.any():
        return 0.0
    hits = np.cumsum(rel)
    ranks = np.arange(1, rel.size + 1)
    return float(np.sum((hits / ranks)[rel]) / rel.sum())


def reciprocal_rank(scores: Sequence[float], grades: Sequence[float]) -> float:
    """1 / rank of the first relevant candidate (0.0 when none is)."""
    rel = _ranked_grades(scores, grades) > 0
    if not rel.any():
        return 0.0
    return 1.0 / float(np.argmax(rel) + 1)


def ndcg_at_k(scores: Sequence[float], grades: Sequence[float], k: int = 10) -> float:
    """nDCG@k with gain ``2**grade - 1`` (0.0 when nothing is relevant)."""
    if k < 1:
        raise InvalidRequestError(f"Invalid 'k': must be >= 1, got {k}.", param="k")
    g = _ranked_grades(scores, grades)
    ideal = np.sort(np.asarray(grades, dtype=np.float64))[::-1]
    disc = 1.0 / np.log2(np.arange(2, g.size + 2))
    dcg = float(np.sum((2.0 ** g[:k] - 1) * disc[:k]))
    idcg = float(np.sum((2.0 ** ideal[:k] - 1) * disc[:k]))
    return dcg / idcg if idcg > 0 else 0.0


def precision_at_1(scores: Sequence[float], grades: Sequence[float]) -> float:
    g = _ranked_grades(scores, grades)
    return float(g.size > 0 and g[0] > 0)


@dataclass(frozen=True)
class QuestionScores:
    """Per-question metric values (one row of a ranking evaluation)."""

    qid: str
    n: int
    n_relevant: int
    ap: float
    rr: float
    ndcg: float
    p1: float


@dataclass(frozen=True)
class RankingReport:
    """Means over the kept questions; ``per_question`` holds each question's values."""

    k: int
    per_question: tuple[QuestionScores, ...]
    n_dropped: int

    def _mean(self, attr: str, w: np.ndarray | None = None) -> float:
        v = np.asarray([getattr(q, attr) for q in self.per_question], dtype=np.float64)
        if v.size == 0:
            return 0.0
        return float(np.average(v, weights=w))

    @property
    def map(self) -> float:
        return self._mean("ap")

    @property
    def mrr(self) -> float:
        return self._mean("rr")

    def metrics(self, weights: np.ndarray | None = None) -> dict[str, float]:
        """``{"map", "mrr", "ndcg@k", "p@1"}``, optionally with bootstrap row weights."""
        return {
            "map": self._mean("ap", weights),
            "mrr": self._mean("rr", weights),
            f"ndcg@{self.k}": self._mean("ndcg", weights),
            "p@1": self._mean("p1", weights),
        }

    def bootstrap(self, *, n_boot: int = 1000, seed: int = 0) -> dict[str, list[float] | None]:
        """Percentile 95% intervals over questions (seeded; see logprobe.calibration.bootstrap)."""
        from ..calibration.bootstrap import bootstrap_cis

        cis = bootstrap_cis(self.metrics, len(self.per_question), n_boot=n_boot, seed=seed)
        return {
            name: None if cis.get(name) is None else list(cis[name])  # type: ignore[arg-type]
            for name in self.metrics()
        }

    def to_dict(self, *, n_boot: int = 0, seed: int = 0) -> dict[str, Any]:
        d: dict[str, Any] = {
            "questions": len(self.per_question),
            "dropped": self.n_dropped,
            **self.metrics(),
        }
        if n_boot:
            d["ci95"] = self.bootstrap(n_boot=n_boot, seed=seed)
        return d


def keep_question(grades: Sequence[float], *, filtered: bool = True) -> bool:
    """Whether a question counts: some relevant candidate, and (``filtered``) not all relevant."""
    rel = [g > 0 for g in grades]
    if not any(rel):
        return False
    return not (filtered and all(rel))


def evaluate_rankings(
    questions: Mapping[str, tuple[Sequence[float], Sequence[float]]],
    *,
    k: int = 10,
    filtered: bool = True,
) -> RankingReport:
    """Metrics of ``{qid: (scores, grades)}`` (scores and grades aligned per candidate)."""
    rows: list[QuestionScores] = []
    dropped = 0
    for qid, (scores, grades) in questions.items():
        if len(scores) != len(grades):
            raise InvalidRequestError(
                f"question {qid!r}: {len(scores)} scores for {len(grades)} labels", param="run"
            )
        if not keep_question(grades, filtered=filtered):
            dropped += 1
            continue
        rows.append(
            QuestionScores(
                qid,
                len(grades),
                sum(1 for g in grades if g > 0),
                average_precision(scores, grades),
                reciprocal_rank(scores, grades),
                ndcg_at_k(scores, grades, k),
                precision_at_1(scores, grades),
            )
        )
    return RankingReport(k, tuple(rows), dropped)


def evaluate_run(qrels: Qrels, run: Run, *, k: int = 10, filtered: bool = False) -> RankingReport:
    """Metrics of a run against qrels; a judged candidate missing from the run ranks last.

    Questions are those of ``qrels``; ``filtered`` is off by default because a filtered qrels
    file (WikiQA's ``*-filtered.ref``) has already dropped the questions to leave out.
    """
    merged: dict[str, tuple[list[float], list[float]]] = {}
    for qid, judged in qrels.items():
        scores_q = run.get(qid, {})
        scores = [float(scores_q.get(doc, -math.inf)) for doc in judged]
        merged[qid] = (scores, [float(g) for g in judged.values()])
    return evaluate_rankings(merged, k=k, filtered=filtered)


def _read_columns(
    path: str | Path, n_min: int, parse: Callable[[list[str]], tuple[str, str, float]]
) -> dict[str, dict[str, float]]:
    p = Path(path)
    if not p.is_file():
        raise InvalidRequestError(f"no such file {str(p)!r}", param="qrels")
    out: dict[str, dict[str, float]] = {}
    for n, line in enumerate(p.read_text(encoding="utf-8").splitlines(), start=1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) < n_min:
            raise InvalidRequestError(
                f"{p.name} line {n}: expected {n_min} columns, got {len(parts)}", param="qrels"
            )
        try:
            qid, doc, value = parse(parts)
        except ValueError:
            raise InvalidRequestError(f"{p.name} line {n}: not a number", param="qrels") from None
        out.setdefault(qid, {})[doc] = value
    return out


def read_trec_qrels(path: str | Path) -> dict[str, dict[str, float]]:
    """``qid iter docid grade`` lines -> ``{qid: {docid: grade}}`` (file order kept)."""
    return _read_columns(path, 4, lambda c: (c[0], c[2], float(c[3])))


def read_trec_run(path: str | Path) -> dict[str, dict[str, float]]:
    """``qid iter docid rank score [tag]`` lines -> ``{qid: {docid: score}}``."""
    return _read_columns(path, 5, lambda c: (c[0], c[2], float(c[4])))


__all__ = [
    "QuestionScores",
    "RankingReport",
    "average_precision",
    "evaluate_rankings",
    "evaluate_run",
    "keep_question",
    "ndcg_at_k",
    "precision_at_1",
    "read_trec_qrels",
    "read_trec_run",
    "reciprocal_rank",
]
