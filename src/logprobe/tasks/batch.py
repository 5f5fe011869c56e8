"""Classifying a whole dataset: predictions written one JSON line at a time (flushed), bad rows
skipped and reported, an interrupted run resumable without redoing finished rows."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import InvalidRequestError
from .classify import ClassifyResult, classify
from .datasets import TextRow
from .runner import ordered_map


@dataclass
class BatchSummary:
    """Counts of a batch run; ``skipped`` lists ``{"line", "error"}`` of every row not predicted."""

    out_path: str
    n_rows: int = 0
    n_written: int = 0
    n_resumed: int = 0
    n_labelled: int = 0
    n_correct: int = 0
    n_abstained: int = 0
    skipped: list[dict[str, Any]] = field(default_factory=list)

    @property
    def accuracy(self) -> float | None:
        return self.n_correct / self.n_labelled if self.n_labelled else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "out": self.out_path,
            "rows": self.n_rows,
            "written": self.n_written,
            "resumed": self.n_resumed,
            "skipped": len(self.skipped),
            "labelled": self.n_labelled,
            "correct": self.n_correct,
            "accuracy": self.accuracy,
            "abstained": self.n_abstained,
            "skipped_rows": self.skipped,
        }


def prediction_record(row: TextRow, result: ClassifyResult) -> dict[str, Any]:
    """The JSON line written for one classified row: the decision (calibrated when a calibrator
    was applied) with the model's raw one beside it, and the task signature it belongs to."""
    raw = result.raw_decision
    gold = row.gold
    return {
        "index": row.index,
        "line": row.line,
        "text": row.text,
        "label": result.label,
        "probs": result.probs,
        "confidence": result.confidence,
        "margin": result.margin,
        "decision": result.decision,
        "gold": gold,
        "correct": None if gold is None else result.label == gold,
        "raw_label": raw.label,
        "raw_probs": raw.probs,
        "raw_confidence": raw.probs[raw.label],
        "raw_margin": raw.margin,
        "raw_decision": raw.decision,
        "raw_correct": None if gold is None else raw.label == gold,
        "calibrator": result.calibrator,
        "method": result.method,
        "normalize": result.normalize,
        "logprobs": {o.text: o.logprob for o in result.options},
        "n_tokens": {o.text: o.n_tokens for o in result.options},
        "model": None if result.signature is None else result.signature.model,
        "signature": None if result.signature is None else result.signature.to_dict(),
    }


def done_indices(path: Path) -> set[int]:
    """Row indices already in a predictions file (for ``resume``); unreadable lines ignored."""
    done: set[int] = set()
    if not path.is_file():
        return done
    with path.open("r", encoding="utf-8") as f:
        for line in f:
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                continue  # a line cut short by a crash is redone
            if isinstance(rec, dict) and isinstance(rec.get("index"), int):
                done.add(rec["index"])
    return done


def _truncate_partial_line(path: Path) -> None:
    """Drop a trailing line without a newline (a write cut short) before appending."""
    data = path.read_bytes()
    if data and not data.endswith(b"\n"):
        path.write_bytes(data[: data.rfind(b"\n") + 1])


def classify_dataset(
    engine: Any,
    rows: Iterable[TextRow],
    labels: Sequence[str],
    out_path: str | Path,
    *,
    workers: int = 2,
    resume: bool = False,
    on_row: Callable[[TextRow, dict[str, Any] | None, str | None], None] | None = None,
    **classify_kwargs: Any,
) -> BatchSummary:
    """Classify every row into ``out_path`` (JSONL), one flushed line per finished row.

    Rows that cannot be read or classified are skipped and listed in the summary; ``resume``
    keeps the lines already in ``out_path`` and does only the rows missing from it.
    ``on_row(row, record, error)`` is called after each row (progress bars).
    """
    out = Path(out_path)
    if out.is_dir():
        raise InvalidRequestError(f"Invalid 'out': {str(out)!r} is a directory.", param="out")
    done = done_indices(out) if resume else set()
    if resume and out.is_file():
        _truncate_partial_line(out)
    summary = BatchSummary(str(out))
    out.parent.mkdir(parents=True, exist_ok=True)
    todo = _pending(rows, done, summary, on_row)

    def work(row: TextRow) -> ClassifyResult:
        assert row.text is not None
        return classify(engine, row.text, labels, **classify_kwargs)

    with out.open("a" if resume else "w", encoding="utf-8") as f:
        for outcome in ordered_map(work, todo, workers=workers):
            row = outcome.item
            if outcome.result is None:
                summary.skipped.append({"line": row.line, "error": outcome.error})
                if on_row:
                    on_row(row, None, outcome.error)
                continue
            rec = prediction_record(row, outcome.result)
            f.write(json.dumps(rec, ensure_ascii=False) + "\n")
            f.flush()
            _count(summary, rec)
            if on_row:
                on_row(row, rec, None)
    return summary


def _pending(
    rows: Iterable[TextRow],
    done: set[int],
    summary: BatchSummary,
    on_row: Callable[[TextRow, dict[str, Any] | None, str | None], None] | None,
) -> Iterator[TextRow]:
    for row in rows:
        summary.n_rows += 1
        if row.index in done:
            summary.n_resumed += 1
            if on_row:
                on_row(row, None, None)
            continue
        if row.error is not None or row.text is None:
            summary.skipped.append({"line": row.line, "error": row.error or "no text"})
            if on_row:
                on_row(row, None, row.error)
            continue
        yield row


def _count(summary: BatchSummary, rec: dict[str, Any]) -> None:
    summary.n_written += 1
    if rec["gold"] is not None:
        summary.n_labelled += 1
        summary.n_correct += int(bool(rec["correct"]))
    if rec["decision"] == "abstain":
        summary.n_abstained += 1


__all__ = ["BatchSummary", "classify_dataset", "done_indices", "prediction_record"]
