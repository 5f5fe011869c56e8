"""Recording served requests into the run store, and rebuilding a Completion from a stream.

The server records each request and response (every token with its logprob, bytes and
alternatives) when it was started with a store and a run name (``logprobe serve --log RUN``).
A response is written before its HTTP reply completes (so a reply a client got is in the store
even if the process is killed right after); a store failure (database down, disk full) is
logged, never turned into a failed request, and the gap is logged when recording resumes.
"""

from __future__ import annotations

import logging
import threading
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

    def record(
        self,
        run: Any,
        prompt: Any,
        completion: Completion,
        params: Any = None,
        *,
        correct: bool | None = None,
        meta: Mapping[str, Any] | None = None,
        latency_ms: float | None = None,
    ) -> Any: ...


class Recorder:
    """Writes served requests into ``store`` under run ``run``."""

    def __init__(self, store: StoreLike, run: str) -> None:
        self.store = store
        self.run = run
        self.recorded = 0
        self.failed = 0
        self._lock = threading.Lock()
        self._gap: tuple[float, int] | None = None  # (when the current gap began, responses lost)

    def record(
        self,
        endpoint: str,
        prompt: Prompt,
        completion: Completion,
        params: GenerationParams,
        started: float,
    ) -> None:
        """Write one response; a failure (store down, disk full) is logged, never raised, and
        the first success after failures logs the gap (how long, how many responses)."""
        latency_ms = (time.perf_counter() - started) * 1000.0
        try:
            self.store.record(
                self.run,
                prompt,
                completion,
                params,
                meta={"endpoint": endpoint, "server": "logprobe"},
                latency_ms=latency_ms,
            )
        except Exception as exc:  # noqa: BLE001 - the store must never fail a request
            message = (
                exc.message if isinstance(exc, LogprobeError) else f"{type(exc).__name__}: {exc}"
            )
            with self._lock:
                self.failed += 1
                since, lost = self._gap or (time.time(), 0)
                self._gap = (since, lost + 1)
            logger.error(
                "could not record %s request into run %r: %s",
                endpoint,
                self.run,
                message.splitlines()[0] if message else type(exc).__name__,
            )
            return
        with self._lock:
            self.recorded += 1
            gap, self._gap = self._gap, None
        if gap is not None:
            since, lost = gap
            logger.warning(
                "recording into run %r resumed: gap of %.1f s since %s, %d response(s) not "
                "recorded",
                self.run,
                time.time() - since,
                time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(since)),
                lost,
            )


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

    def completion(
        self,
        model: str,
        prompt_tokens: int,
        mode: LogprobMode,
        indices: Sequence[int] | None = None,
        rid: str | None = None,
    ) -> Completion:
        idx = list(range(len(self.texts))) if indices is None else list(indices)
        choices = tuple(
            Choice(
                text=self.texts[i],
                tokens=tuple(self.tokens[i]),
                finish_reason=self.finish[i],  # type: ignore[arg-type]
                index=k,
            )
            for k, i in enumerate(idx)
        )
        usage = Usage(prompt_tokens, sum(len(self.tokens[i]) for i in idx))
        return Completion(
            choices=choices,
            model=model,
            usage=usage,
            logprob_mode=mode,
            id=rid,
            created=int(time.time()),
        )


__all__ = ["Recorder", "StoreLike", "StreamCollector"]
