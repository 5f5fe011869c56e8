"""Recording served requests into the run store, and rebuilding a Completion from a stream.

The server records each request and response (every token with its logprob, bytes and
alternatives) when it was started with a store and a run name (``logprobe serve --log RUN``).
Recording happens after the response has been sent; a store failure is logged, never turned
into a failed request.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from ..engines.base import GenerationParams, StreamEvent
from ..errors import LogprobeError
from ..types import Choice, Completion, LogprobMode, TokenLogprob, Usage

logger = logging.getLogger("logprobe.server")

Prompt = str | Sequence[Mapping[str, Any]]


class StoreLike(Protocol):
    """What the server needs of :class:`logprobe.store.Store`."""

    def record(self, run: Any, prompt: Any, completion: Completion, params: Any = None, *,
               correct: bool | None = None, meta: Mapping[str, Any] | None = None,
               latency_ms: float | None = None) -> Any: ...


class Recorder:
    """Writes served requests into ``store`` under run ``run``."""

    def __init__(self, store: StoreLike, run: str) -> None:
        self.store = store
        self.run = run
        self.recorded = 0
        self.failed = 0

    def record(self, endpoint: str, prompt: Prompt, completion: Completion,
               params: GenerationParams, started: float) -> None:
        latency_ms = (time.perf_counter() - started) * 1000.0
        try:
            self.store.record(self.run, prompt, completion, params,
                              meta={"endpoint": endpoint, "server": "logprobe"},
                              latency_ms=latency_ms)
            self.recorded += 1
        except LogprobeError as exc:
            self.failed += 1
            logger.error("could not record %s request into run %r: %s", endpoint, self.run,
                         exc.message)


class StreamCollector:
    """Accumulates streamed events into per-choice text, tokens and finish reasons."""

    def __init__(self, n_choices: int) -> None:
        self.texts = [""] * n_choices
        self.tokens: list[list[TokenLogprob]] = [[] for _ in range(n_choices)]
        self.finish: list[str | None] = [None] * n_choices

    def add(self, index: int, ev: StreamEvent) -> None:
        self.texts[index] += ev.text
        if ev.token is not None:
            self.tokens[index].append(ev.token)
        if ev.finish_reason is not None:
            self.finish[index] = ev.finish_reason

    @property
    def n_tokens(self) -> int:
        return sum(len(t) for t in self.tokens)

    def completion(self, model: str, prompt_tokens: int, mode: LogprobMode,
                   indices: Sequence[int] | None = None, rid: str | None = None) -> Completion:
        idx = list(range(len(self.texts))) if indices is None else list(indices)
        choices = tuple(
            Choice(text=self.texts[i], tokens=tuple(self.tokens[i]),
                   finish_reason=self.finish[i], index=k)  # type: ignore[arg-type]
            for k, i in enumerate(idx)
        )
        usage = Usage(prompt_tokens, sum(len(self.tokens[i]) for i in idx))
        return Completion(choices=choices, model=model, usage=usage, logprob_mode=mode, id=rid,
                          created=int(time.time()))


__all__ = ["Recorder", "StoreLike", "StreamCollector"]
