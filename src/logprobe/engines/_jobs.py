"""What the scheduler works on: generation and scoring jobs, running sequences, free slots.

Callers build a :class:`GenJob` or :class:`ScoreJob` and wait on it; the scheduler thread
(:mod:`._scheduler`) owns everything else.
"""

from __future__ import annotations

import itertools
import queue
import threading
from collections import OrderedDict
from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from ..types import TokenLogprob
from ._sampling import SequenceSampler
from ._sequence import TextTracker
from .base import GenerationParams, StreamEvent


class EventSink(Protocol):
    """Where a job's events go: :class:`StreamEvent` values, then ``None`` or an exception."""

    def put(self, item: Any) -> None: ...


class GenJob:
    """One generation request (``params.n`` choices) and the sink its events go to: a
    :class:`queue.SimpleQueue` read by a blocking consumer, or an asyncio consumer's
    :class:`~._aio.AsyncEvents`. The scheduler thread is the only writer."""

    def __init__(
        self,
        ids: list[int],
        params: GenerationParams,
        constraint: Any,
        events: EventSink | None = None,
    ) -> None:
        self.ids = ids
        self.params = params
        self.constraint = constraint
        self.events: EventSink = queue.SimpleQueue() if events is None else events
        self._cancelled = threading.Event()
        self.prompt_tokens: tuple[TokenLogprob, ...] | None = None
        self.open_seqs = 0
        self.shared_prefix = 0  # prompt tokens whose KV cache was reused instead of decoded

    def cancel(self) -> None:
        self._cancelled.set()

    @property
    def cancelled(self) -> bool:
        return self._cancelled.is_set()


class EventStream(Iterator[StreamEvent]):
    """A blocking reader of one generation job's events (``LlamaEngine.stream``); ``close()``
    (or garbage collection) cancels the job, even before the first event was read."""

    def __init__(self, job: GenJob) -> None:
        assert isinstance(job.events, queue.SimpleQueue)
        self._job = job
        self._queue = job.events
        self._done = False

    def __next__(self) -> StreamEvent:
        if self._done:
            raise StopIteration
        ev = self._queue.get()
        if ev is None or isinstance(ev, BaseException):
            self.close()
            if ev is None:
                raise StopIteration
            raise ev
        return ev

    def close(self) -> None:
        self._done = True
        self._job.cancel()

    def __del__(self) -> None:
        self._job.cancel()


class ScoreJob:
    """Teacher-forced scoring of (prefix ids, continuation ids, n_bos) requests."""

    def __init__(self, reqs: Sequence[tuple[list[int], list[int], int]], k: int) -> None:
        self.reqs = list(reqs)
        self.k = k
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


class Slots:
    """The context's sequences, one KV stream each: free, running, or holding a finished
    prompt's KV cache for reuse (a least-recently-used prefix cache).

    A slot's stream holds the KV of ``cached[slot]`` at positions ``0..len-1`` in cells
    ``0..len-1`` (the canonical layout), so reusing its first ``m`` tokens gives bit-for-bit the
    values a fresh prefill would.
    """

    def __init__(self, n: int, *, cache: bool = True) -> None:
        self.n = n
        self.empty: list[int] = list(range(n))[::-1]
        self.cached: OrderedDict[int, list[int]] = OrderedDict()
        self.cache_enabled = cache

    @property
    def available(self) -> int:
        return len(self.empty) + len(self.cached)

    def take(self, busy: Collection[int] = ()) -> tuple[int, bool]:
        """A slot for new work, keeping the ``busy`` (running) slots contiguous. Returns
        ``(slot, was_cached)``; a cached slot's stream still holds its tokens.

        llama.cpp decodes the sequences of separate KV streams in one pass only for runs of
        consecutive ids (``split_equal(sequential=True)``): a gap between running slots splits
        every decode step into several smaller passes (4 sequences as 2+2 cost about a third
        more). So the slot that leaves the fewest runs wins: one filling a gap, else one next to
        a running slot; then an empty slot before a cached one (least recently used first), then
        the lowest id."""
        slot = self._best(busy)
        assert slot is not None, "take() with no free slot"
        return slot, self.claim(slot)

    def better_than(self, slot: int, busy: Collection[int]) -> int | None:
        """A free slot that would leave fewer runs of running slots than ``slot`` does (for
        moving a cached prefix next to the running sequences), or None."""
        best = self._best(busy, exclude=slot)
        if best is None or runs_with(busy, best) >= runs_with(busy, slot):
            return None
        return best

    def _best(self, busy: Collection[int], exclude: int | None = None) -> int | None:
        """The free slot :meth:`take` prefers (see there), ``exclude`` aside."""
        lru = {slot: i for i, slot in enumerate(self.cached)}
        free = [s for s in [*self.empty, *self.cached] if s != exclude]
        return min(
            free, key=lambda s: (runs_with(busy, s), s in lru, lru.get(s, 0), s), default=None
        )

    def claim(self, slot: int) -> bool:
        """Take a specific free slot (a cached one's prefix is about to be reused); returns
        whether it was cached (its stream still holds tokens)."""
        if slot in self.cached:
            del self.cached[slot]
            return True
        self.empty.remove(slot)
        return False

    def give_back(self, slot: int, ids: Sequence[int] | None) -> bool:
        """Return a slot; ``ids`` (the tokens its stream holds) keeps it as a prefix-cache entry.
        Returns whether the slot's stream must be cleared by the caller."""
        if ids is not None and self.cache_enabled and len(ids) >= MIN_SHARED_PREFIX:
            self.cached[slot] = list(ids)
            return False
        self.empty.append(slot)
        return True

    def best_prefix(self, ids: Sequence[int]) -> tuple[int, int]:
        """``(length, slot)`` of the cached entry sharing the longest prefix with ``ids``."""
        best, where = 0, -1
        for slot, held in self.cached.items():
            n = common_prefix(held, ids)
            if n > best:
                best, where = n, slot
        return best, where

    def reset(self) -> None:
        self.empty = list(range(self.n))[::-1]
        self.cached.clear()


def runs_with(busy: Collection[int], slot: int) -> int:
    """How many runs of consecutive ids ``busy`` plus ``slot`` form."""
    ids = sorted({*busy, slot})
    return 1 + sum(1 for a, b in itertools.pairwise(ids) if b != a + 1)


MIN_SHARED_PREFIX = 8
"""Shortest prompt prefix worth reusing from another sequence instead of decoding it."""


def common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    """Length of the longest common prefix of two token id lists."""
    n = min(len(a), len(b))
    diff = np.flatnonzero(np.asarray(a[:n]) != np.asarray(b[:n]))
    return int(diff[0]) if diff.size else n
