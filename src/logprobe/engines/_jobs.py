"""What the scheduler works on: generation and scoring jobs, running sequences, free slots.

Callers build a :class:`GenJob` or :class:`ScoreJob` and wait on it; the scheduler thread
(:mod:`._scheduler`) owns everything else.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..types import TokenLogprob
from ._sampling import SequenceSampler
from ._sequence import TextTracker
from .base import GenerationParams


class GenJob:
    """One generation request (``params.n`` choices) and the queue its events go to."""

    def __init__(self, ids: list[int], params: GenerationParams, constraint: Any) -> None:
        self.ids = ids
        self.params = params
        self.constraint = constraint
        self.events: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._cancelled = threading.Event()
        self.prompt_tokens: tuple[TokenLogprob, ...] | None = None
        self.reserve = len(ids) + params.n * params.max_tokens
        self.open_seqs = 0

    def cancel(self) -> None:
        self._cancelled.set()

    @property
    def cancelled(self) -> bool:
        return self._cancelled.is_set()


class ScoreJob:
    """Teacher-forced scoring of (prefix ids, continuation ids, n_bos) requests."""

    def __init__(self, reqs: Sequence[tuple[list[int], list[int], int]], k: int) -> None:
        self.reqs = list(reqs)
        self.k = k
        self.reserve = max(len(p) + len(c) for p, c, _ in self.reqs)
        self._done = threading.Event()
        self.result: list[list[TokenLogprob]] | None = None
        self.error: BaseException | None = None

    def finish(self, result: list[list[TokenLogprob]] | None, error: BaseException | None) -> None:
        self.result, self.error = result, error
        self._done.set()

    def wait(self) -> list[list[TokenLogprob]]:
        self._done.wait()
        if self.error is not None:
            raise self.error
        assert self.result is not None
        return self.result

    @property
    def cancelled(self) -> bool:
        return False


@dataclass(slots=True)
class _Seq:
    job: GenJob
    index: int
    slot: int
    pos: int
    sampler: SequenceSampler
    tracker: TextTracker
    n_gen: int = 0
    last: int = -1
    done: bool = False


@dataclass(slots=True)
class _Slots:
    free: list[int]
    cells_free: int
    held: dict[int, int] = field(default_factory=dict)  # job id -> cells reserved


MIN_SHARED_PREFIX = 8
"""Shortest prompt prefix worth copying from a running sequence instead of decoding it."""


def common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    """Length of the longest common prefix of two token id lists."""
    n = min(len(a), len(b))
    diff = np.flatnonzero(np.asarray(a[:n]) != np.asarray(b[:n]))
    return int(diff[0]) if diff.size else n
