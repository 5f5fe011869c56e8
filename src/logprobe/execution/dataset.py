"""Running a row function over a dataset into a :class:`JsonlSink`, on any executor: rows already
in the output are skipped (resume), unreadable rows are skipped and listed, every finished row is
written (in input order) before the next one is reported."""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from .base import Executor, RowFn
from .sink import JsonlSink

T = TypeVar("T")
R = TypeVar("R")

OnRow = Callable[[Any, "dict[str, Any] | None", "str | None"], None]


@dataclass
class DatasetRun:
    """Counts of one run; ``skipped`` lists ``{"line", "error"}`` of every row not done."""

    rows: int = 0
    written: int = 0
    resumed: int = 0
    skipped: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class RowPlan(Generic[T, R]):
    """How to treat one kind of row: its output key, why it cannot run, its output record."""

    key: Callable[[T], Hashable]
    line: Callable[[T], int]
    problem: Callable[[T], str | None]
    record: Callable[[T, R], dict[str, Any]]


def run_dataset(
    executor: Executor,
    fn: RowFn[T, R],
    items: Iterable[T],
    sink: JsonlSink,
    plan: RowPlan[T, R],
    *,
    on_row: OnRow | None = None,
) -> DatasetRun:
    """Apply ``fn`` to every item not yet in ``sink`` and write its record, in input order.

    ``on_row(item, record, error)`` runs after each item: ``record`` is the line just written
    (``None`` for a resumed or skipped row), ``error`` why a row was skipped.
    """
    run = DatasetRun()
    todo = _todo(items, sink, plan, run, on_row)
    for outcome in executor.map(fn, todo):
        item = outcome.item
        if outcome.result is None:
            run.skipped.append({"line": plan.line(item), "error": outcome.error or "failed"})
            if on_row:
                on_row(item, None, outcome.error)
            continue
        rec = plan.record(item, outcome.result)
        if sink.write(rec):
            run.written += 1
        if on_row:
            on_row(item, rec, None)
    return run


def _todo(
    items: Iterable[T], sink: JsonlSink, plan: RowPlan[T, R], run: DatasetRun, on_row: OnRow | None
) -> Iterator[T]:
    for item in items:
        run.rows += 1
        if plan.key(item) in sink.done:
            run.resumed += 1
            if on_row:
                on_row(item, None, None)
            continue
        problem = plan.problem(item)
        if problem is not None:
            run.skipped.append({"line": plan.line(item), "error": problem})
            if on_row:
                on_row(item, None, problem)
            continue
        yield item


__all__ = ["DatasetRun", "OnRow", "RowPlan", "run_dataset"]
