"""The local executor: today's behaviour. One engine in this process, ``workers`` rows in flight
on threads (the engine batches concurrent calls), results in input order."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from functools import partial
from typing import Any, TypeVar

from ..tasks.runner import Outcome, check_workers, ordered_map
from .base import EngineSpec, RowFn, close_engine

T = TypeVar("T")
R = TypeVar("R")


def _call(fn: RowFn[T, R], engine: Any, item: T) -> R:
    return fn(engine, item)


class LocalExecutor:
    """Rows on threads of this process, all through one engine.

    Give an open ``engine`` (the caller keeps ownership), or a ``spec`` to open one here and
    close it in :meth:`close`, or neither for row functions that need no engine (``gate``).
    """

    backend = "local"

    def __init__(
        self, engine: Any = None, *, spec: EngineSpec | None = None, workers: int = 2
    ) -> None:
        self.workers = check_workers(workers)
        self._owned = engine is None and spec is not None
        self.engine = spec.open() if self._owned and spec is not None else engine
        self.model_name = str(getattr(self.engine, "model_name", "") or "")

    def map(self, fn: RowFn[T, R], items: Iterable[T]) -> Iterator[Outcome[T, R]]:
        """``fn(engine, item)`` for every item, in input order."""
        return ordered_map(partial(_call, fn, self.engine), items, workers=self.workers)

    def describe(self) -> dict[str, Any]:
        return {"backend": self.backend, "workers": self.workers}

    def close(self) -> None:
        if self._owned:
            close_engine(self.engine)
            self._owned = False

    def __enter__(self) -> LocalExecutor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


__all__ = ["LocalExecutor"]
