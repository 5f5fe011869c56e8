"""Row functions and row plans of the dataset commands (``eval mc``, ``score --dataset``,
``gate``); ``classify --dataset`` keeps its own in :mod:`logprobe.tasks.batch`.

Each row function is a frozen dataclass, picklable, stateless: the same row gives the same
answer on any executor, however often it runs.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import InvalidRequestError
from ..tasks.datasets import MCItem, read_rows
from ..tasks.evaluate import MCReport, MCResult, score_mc_item
from ..types import ScoredText
from .base import Executor
from .dataset import RowPlan
from .sink import finite_json

# --- eval mc ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MCRow:
    """Score one multiple-choice item (``eval mc``)."""

    chat_template: bool = False
    choice_prefix: str = " "

    def __call__(self, engine: Any, item: MCItem) -> MCResult:
        return score_mc_item(
            engine, item, chat_template=self.chat_template, choice_prefix=self.choice_prefix
        )


def mc_report(
    executor: Executor,
    fn: MCRow,
    items: Iterable[MCItem],
    on_item: Callable[[MCItem, MCResult | None, str | None], None] | None = None,
) -> MCReport:
    """:func:`~logprobe.tasks.multiple_choice` on an executor: results in input order."""
    results: list[MCResult] = []
    skipped: list[tuple[int, str]] = []
    for outcome in executor.map(fn, items):
        if outcome.result is None:
            skipped.append((outcome.item.line, outcome.error or "failed"))
        else:
            results.append(outcome.result)
        if on_item:
            on_item(outcome.item, outcome.result, outcome.error)
    return MCReport(tuple(results), tuple(skipped))


# --- score --dataset ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ScoreItem:
    """One text to score (after an optional prompt); ``error`` says why a row is unusable."""

    index: int
    line: int
    text: str | None
    prompt: str | None = None
    id: Any = None
    error: str | None = None


def score_items(
    path: str | Path,
    *,
    text_col: str = "text",
    prompt_col: str | None = None,
    id_col: str = "id",
    fmt: str | None = None,
) -> Iterator[ScoreItem]:
    """The rows of a JSONL/CSV/TSV file as texts to score; bad rows carry ``error``."""
    for index, row in enumerate(read_rows(path, fmt=fmt)):
        if row.record is None:
            yield ScoreItem(index, row.line, None, error=row.error)
            continue
        rec = row.record
        text, prompt = rec.get(text_col), rec.get(prompt_col) if prompt_col else None
        rid = rec.get(id_col)
        if not isinstance(text, str) or not text:
            why = "missing" if text is None else "empty" if text == "" else "not a string"
            yield ScoreItem(
                index, row.line, None, error=f"line {row.line}: field {text_col!r} is {why}"
            )
        elif prompt_col and prompt is not None and not isinstance(prompt, str):
            yield ScoreItem(
                index,
                row.line,
                None,
                error=f"line {row.line}: field {prompt_col!r} is not a string",
            )
        else:
            yield ScoreItem(index, row.line, text, prompt or None, rid)


@dataclass(frozen=True, slots=True)
class ScoreRow:
    """Teacher-forced logprobs of one text (``score --dataset``)."""

    top_logprobs: int = 0

    def __call__(self, engine: Any, item: ScoreItem) -> ScoredText:
        assert item.text is not None
        return engine.score(item.text, prompt=item.prompt, top_logprobs=self.top_logprobs)


def score_record(item: ScoreItem, s: ScoredText) -> dict[str, Any]:
    """The JSON line of one scored text."""
    n = s.n_scored
    n_bytes = len(s.text.encode("utf-8"))
    rec: dict[str, Any] = {"index": item.index, "line": item.line}
    if item.id is not None:
        rec["id"] = item.id
    rec.update(
        {
            "logprob": s.logprob,
            "n_tokens": len(s.tokens),
            "n_scored": n,
            "mean_logprob": s.logprob / n if n else None,
            "perplexity": math.exp(-s.logprob / n) if n else None,
            "n_bytes": n_bytes,
            "bits_per_byte": -s.logprob / math.log(2) / n_bytes if n and n_bytes else None,
            "tokens": [t.token for t in s.tokens],
            "token_logprobs": [t.logprob for t in s.tokens],
        }
    )
    if any(t.top_logprobs for t in s.tokens):
        rec["top_logprobs"] = [{a.token: a.logprob for a in t.top_logprobs} for t in s.tokens]
    return finite_json(rec)


SCORE_ROWS: RowPlan[ScoreItem, ScoredText] = RowPlan(
    key=lambda item: item.index,
    line=lambda item: item.line,
    problem=lambda item: item.error,
    record=score_record,
)


def score_totals(records: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """Corpus figures over score records: total logprob, tokens, perplexity, bits per byte."""
    keep = [
        r
        for r in records
        if isinstance(r.get("logprob"), (int, float))
        and isinstance(r.get("n_scored"), int)
        and isinstance(r.get("n_bytes"), int)
    ]
    total = math.fsum(float(r["logprob"]) for r in keep)
    n = sum(int(r["n_scored"]) for r in keep)
    n_bytes = sum(int(r["n_bytes"]) for r in keep)
    return {
        "texts": len(keep),
        "logprob": total,
        "n_scored": n,
        "perplexity": math.exp(-total / n) if n else None,
        "bits_per_byte": -total / math.log(2) / n_bytes if n and n_bytes else None,
    }


def check_top_logprobs(k: int) -> int:
    if isinstance(k, bool) or not isinstance(k, int) or not 0 <= k <= 20:
        raise InvalidRequestError(
            f"Invalid 'top_logprobs': expected 0..20, got {k!r}.", param="top_logprobs"
        )
    return k


__all__ = [
    "SCORE_ROWS",
    "MCRow",
    "ScoreItem",
    "ScoreRow",
    "check_top_logprobs",
    "mc_report",
    "score_items",
    "score_record",
    "score_totals",
]
