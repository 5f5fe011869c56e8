"""Classifying a whole dataset: predictions written one JSON line at a time (flushed), bad rows
skipped and reported, an interrupted run resumable without redoing finished rows."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .classify import ClassifyResult, classify
from .datasets import TextRow

if TYPE_CHECKING:
    from ..execution import Executor, RowPlan


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
    from ..execution import read_records  # the execution layer imports tasks: import late

    return {r["index"] for r in read_records(Path(path)) if isinstance(r.get("index"), int)}


@dataclass(frozen=True, slots=True)
class ClassifyRow:
    """The row function of ``classify --dataset`` (picklable, for any executor)."""

    labels: tuple[str, ...]
    options: tuple[tuple[str, Any], ...] = ()

    def __call__(self, engine: Any, row: TextRow) -> ClassifyResult:
        assert row.text is not None
        return classify(engine, row.text, self.labels, **dict(self.options))


def _row_problem(row: TextRow) -> str | None:
    if row.error is not None or row.text is None:
        return row.error or "no text"
    return None


def text_row_plan() -> RowPlan[TextRow, ClassifyResult]:
    """How ``classify --dataset`` keys, checks and records its rows."""
    from ..execution import RowPlan

    return RowPlan(
        key=lambda row: row.index,
        line=lambda row: row.line,
        problem=_row_problem,
        record=prediction_record,
    )


def classify_dataset(
    engine: Any,
    rows: Iterable[TextRow],
    labels: Sequence[str],
    out_path: str | Path,
    *,
    workers: int = 2,
    resume: bool = False,
    on_row: Callable[[TextRow, dict[str, Any] | None, str | None], None] | None = None,
    executor: Executor | None = None,
    **classify_kwargs: Any,
) -> BatchSummary:
    """Classify every row into ``out_path`` (JSONL), one flushed line per finished row.

    Rows that cannot be read or classified are skipped and listed in the summary; ``resume``
    keeps the lines already in ``out_path`` and does only the rows missing from it; the
    figures (labelled, correct, abstained) count the kept lines of these rows too.
    ``on_row(row, record, error)`` is called after each row (progress bars). ``executor``
    runs the rows (default: this process, ``workers`` in flight on ``engine``; a
    :class:`~logprobe.execution.RayExecutor` brings its own engines and ignores ``engine``).
    """
    from ..execution import JsonlSink, LocalExecutor, run_dataset

    fn = ClassifyRow(tuple(labels), tuple(sorted(classify_kwargs.items())))
    runner = executor if executor is not None else LocalExecutor(engine, workers=workers)
    seen: set[int] = set()

    def track(row: TextRow, rec: dict[str, Any] | None, err: str | None) -> None:
        seen.add(row.index)
        if on_row:
            on_row(row, rec, err)

    with JsonlSink(out_path, key="index", resume=resume) as sink:
        run = run_dataset(runner, fn, rows, sink, text_row_plan(), on_row=track)
        summary = BatchSummary(
            str(sink.path),
            n_rows=run.rows,
            n_written=run.written,
            n_resumed=run.resumed,
            skipped=run.skipped,
        )
        for rec in sink.records():
            if rec.get("index") in seen:
                _count(summary, rec)
    return summary


def _count(summary: BatchSummary, rec: dict[str, Any]) -> None:
    if rec.get("gold") is not None:
        summary.n_labelled += 1
        summary.n_correct += int(bool(rec.get("correct")))
    if rec.get("decision") == "abstain":
        summary.n_abstained += 1


__all__ = ["BatchSummary", "ClassifyRow", "classify_dataset", "done_indices", "prediction_record"]
