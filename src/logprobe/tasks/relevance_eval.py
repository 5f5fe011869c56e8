"""Relevance over a labelled dataset: questions grouped from qrels-style rows, every candidate
scored once (judgement and query likelihood), MAP/MRR/nDCG@k for each method and baseline.

Rows are ``(question id, question, passage, label)``; the column names are given (WikiQA:
``QuestionID, Question, Sentence, Label``). Rows of one question id form its candidate list, in
file order. A file whose first row lacks a named column is rejected with a one-line error; a
later row that lacks one, or whose label is not a number, is skipped and reported.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import InvalidRequestError
from .datasets import read_rows
from .ranking_metrics import RankingReport, evaluate_rankings, keep_question
from .relevance import METHODS, RelevanceResult, relevance, word_overlap
from .runner import ordered_map

if TYPE_CHECKING:
    from ..engines.base import Engine


@dataclass(frozen=True)
class Question:
    """One question with its candidates (file order) and their relevance grades."""

    qid: str
    question: str
    passages: tuple[str, ...]
    grades: tuple[float, ...]


@dataclass
class LoadedQuestions:
    questions: list[Question]
    skipped: list[dict[str, Any]] = field(default_factory=list)


def load_questions(
    path: str | Path,
    *,
    qid_col: str = "qid",
    question_col: str = "question",
    passage_col: str = "passage",
    label_col: str = "label",
    fmt: str | None = None,
) -> LoadedQuestions:
    """Group a JSONL/CSV/TSV file of ``(qid, question, passage, label)`` rows into questions."""
    cols = {
        "qid_col": qid_col,
        "question_col": question_col,
        "passage_col": passage_col,
        "label_col": label_col,
    }
    grouped: dict[str, tuple[str, list[str], list[float]]] = {}
    out = LoadedQuestions([])
    first = True
    for row in read_rows(path, fmt=fmt):
        if row.record is None:
            out.skipped.append({"line": row.line, "error": row.error})
            continue
        missing = [c for c in cols.values() if c not in row.record]
        if missing and first:
            raise InvalidRequestError(
                f"Invalid 'dataset': missing column {missing[0]!r} (columns: "
                f"{', '.join(map(str, row.record))}); set --{_flag(cols, missing[0])}.",
                param="dataset",
            )
        first = False
        if missing:
            out.skipped.append({"line": row.line, "error": f"missing field {missing[0]!r}"})
            continue
        rec = row.record
        try:
            grade = float(rec[label_col])
        except (TypeError, ValueError):
            out.skipped.append(
                {"line": row.line, "error": f"label {rec[label_col]!r} is not a number"}
            )
            continue
        passage, question = str(rec[passage_col]), str(rec[question_col])
        if not passage.strip() or not question.strip():
            out.skipped.append({"line": row.line, "error": "empty question or passage"})
            continue
        entry = grouped.setdefault(str(rec[qid_col]), (question, [], []))
        entry[1].append(passage)
        entry[2].append(grade)
    out.questions = [
        Question(q, text, tuple(ps), tuple(gs)) for q, (text, ps, gs) in grouped.items()
    ]
    if not out.questions:
        raise InvalidRequestError(
            f"Invalid 'dataset': no usable rows in {str(path)!r}.", param="dataset"
        )
    return out


def _flag(cols: dict[str, str], value: str) -> str:
    name = next(k for k, v in cols.items() if v == value)
    return name.replace("_", "-")


def select_questions(
    questions: Sequence[Question],
    *,
    limit: int | None = None,
    seed: int | None = None,
    filtered: bool = True,
) -> list[Question]:
    """The questions that count (``filtered``: some but not all candidates relevant), then
    ``limit`` of them: the first, or a seeded random sample kept in file order."""
    kept = [q for q in questions if keep_question(q.grades, filtered=filtered)]
    if limit is None or limit >= len(kept):
        return kept
    if limit < 1:
        raise InvalidRequestError(f"Invalid 'limit': must be >= 1, got {limit}.", param="limit")
    if seed is None:
        return kept[:limit]
    picked = sorted(random.Random(seed).sample(range(len(kept)), limit))
    return [kept[i] for i in picked]


def random_baseline(
    questions: Sequence[Question], *, k: int = 10, n_perm: int = 100, seed: int = 0
) -> dict[str, float]:
    """Expected metrics of a random order (mean over ``n_perm`` seeded shuffles)."""
    rng = np.random.default_rng(seed)
    sums: dict[str, float] = {}
    for _ in range(n_perm):
        run = {q.qid: (list(rng.random(len(q.grades))), list(q.grades)) for q in questions}
        for name, v in evaluate_rankings(run, k=k, filtered=False).metrics().items():
            sums[name] = sums.get(name, 0.0) + v / n_perm
    return sums


def overlap_report(questions: Sequence[Question], *, k: int = 10, seed: int = 0) -> RankingReport:
    """The word-overlap baseline's metrics; ties (overlap counts are small integers) are broken
    at random (seeded), since input order is itself a strong signal on WikiQA (see
    :func:`order_report`)."""
    rng = np.random.default_rng(seed)
    run = {
        q.qid: (
            list(
                np.array([word_overlap(q.question, p) for p in q.passages])
                + 1e-3 * rng.random(len(q.passages))
            ),
            list(q.grades),
        )
        for q in questions
    }
    return evaluate_rankings(run, k=k, filtered=False)


def order_report(questions: Sequence[Question], *, k: int = 10) -> RankingReport:
    """The document-order baseline: candidates ranked as they come in the file."""
    run = {
        q.qid: (list(-np.arange(len(q.passages), dtype=np.float64)), list(q.grades))
        for q in questions
    }
    return evaluate_rankings(run, k=k, filtered=False)


def score_questions(
    engine: Engine,
    questions: Sequence[Question],
    *,
    calibrator: Any | None = None,
    weight: float = 1.0,
    workers: int = 2,
    method: str = "ql",
    on_question: Callable[[Question, RelevanceResult | None, str | None], None] | None = None,
) -> tuple[list[tuple[Question, RelevanceResult]], list[dict[str, Any]]]:
    """Score every question (``workers`` questions in flight); failures are listed, not raised."""
    done: list[tuple[Question, RelevanceResult]] = []
    failed: list[dict[str, Any]] = []

    def work(q: Question) -> RelevanceResult:
        return relevance(
            engine,
            q.question,
            list(q.passages),
            calibrator=calibrator,
            weight=weight,
            workers=4,
            method=method,
        )

    for outcome in ordered_map(work, questions, workers=workers):
        if outcome.result is None:
            failed.append({"qid": outcome.item.qid, "error": outcome.error})
        else:
            done.append((outcome.item, outcome.result))
        if on_question is not None:
            on_question(outcome.item, outcome.result, outcome.error)
    return done, failed


def method_reports(
    scored: Sequence[tuple[Question, RelevanceResult]], *, k: int = 10
) -> dict[str, RankingReport]:
    """One ranking report per method (judge, ql, combined) over the scored questions."""
    return {
        m: evaluate_rankings(
            {q.qid: (r.scores(m), list(q.grades)) for q, r in scored}, k=k, filtered=False
        )
        for m in METHODS
    }


__all__ = [
    "LoadedQuestions",
    "Question",
    "load_questions",
    "method_reports",
    "order_report",
    "overlap_report",
    "random_baseline",
    "score_questions",
    "select_questions",
]
