"""Running one task over many rows: a few rows in flight at once (the engine batches concurrent
calls), results in input order, per-row user errors kept as results instead of raised."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Generic, TypeVar

from ..errors import InvalidRequestError, LogprobeError

T = TypeVar("T")
R = TypeVar("R")


@dataclass(frozen=True, slots=True)
class Outcome(Generic[T, R]):
    """The result of one row, or the one-line error that made it fail."""

    item: T
    result: R | None
    error: str | None = None


def check_workers(workers: int) -> int:
    if isinstance(workers, bool) or not isinstance(workers, int) or not 1 <= workers <= 64:
        raise InvalidRequestError(
            f"Invalid 'workers': expected an integer between 1 and 64, got {workers!r}.",
            param="workers",
        )
    return workers


def _safe(fn: Callable[[T], R], item: T) -> Outcome[T, R]:
    try:
        return Outcome(item, fn(item))
    except LogprobeError as e:
        return Outcome(item, None, e.message)


def ordered_map(
    fn: Callable[[T], R], items: Iterable[T], *, workers: int = 1
) -> Iterator[Outcome[T, R]]:
    """Apply ``fn`` to ``items`` with up to ``workers`` calls in flight; yield in input order.

    A :class:`~logprobe.errors.LogprobeError` raised for one item becomes that item's
    ``error``; any other exception propagates (after the items before it were yielded).
    """
    check_workers(workers)
    if workers == 1:
        for item in items:
            yield _safe(fn, item)
        return
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="logprobe-task") as pool:
        pending: deque[Future[Outcome[T, R]]] = deque()
        try:
            for item in items:
                pending.append(pool.submit(_safe, fn, item))
                if len(pending) >= 2 * workers:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
        finally:
            for fut in pending:
                fut.cancel()


__all__ = ["Outcome", "check_workers", "ordered_map"]
