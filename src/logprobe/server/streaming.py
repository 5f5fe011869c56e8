"""Bridges from the blocking engine to asyncio, admission control, and the SSE response.

The engine is thread-safe and batches concurrent calls internally, so each request's engine call
runs in its own worker thread and the event loop never blocks. A streamed generation runs its
engine iterator in a dedicated thread that hands events to the loop through an
:class:`asyncio.Queue`; closing the :class:`ThreadedStream` (client gone, request over) makes that
thread close the iterator, which cancels the generation in the engine.
"""

from __future__ import annotations

import asyncio
import inspect
import threading
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import anyio
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from .errors import ServerBusyError


@dataclass
class ServerStats:
    """Counters read by ``/health`` and by tests (engine events pulled, streams cancelled)."""

    requests: int = 0
    rejected: int = 0
    in_flight: int = 0
    stream_events: int = 0
    streams_cancelled: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, name: str, value: int = 1) -> None:
        with self._lock:
            setattr(self, name, getattr(self, name) + value)

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return {
                "requests": self.requests,
                "rejected": self.rejected,
                "in_flight": self.in_flight,
                "stream_events": self.stream_events,
                "streams_cancelled": self.streams_cancelled,
            }


class Slot:
    """One admitted request; :meth:`release` is idempotent."""

    def __init__(self, stats: ServerStats) -> None:
        self._stats = stats
        self._released = False

    def release(self) -> None:
        if not self._released:
            self._released = True
            self._stats.add("in_flight", -1)


class Admission:
    """Bounded admission: at most ``max_in_flight`` generation requests; more get a 429."""

    def __init__(self, max_in_flight: int, stats: ServerStats, *, retry_after: int = 1) -> None:
        if max_in_flight < 1:
            raise ValueError("max_queue must be at least 1")
        self.max_in_flight = max_in_flight
        self.retry_after = retry_after
        self._stats = stats
        self._lock = threading.Lock()

    def acquire(self) -> Slot:
        with self._lock:
            if self._stats.in_flight >= self.max_in_flight:
                self._stats.add("rejected")
                raise ServerBusyError(
                    f"The server is busy: {self._stats.in_flight} requests in flight (limit "
                    f"{self.max_in_flight}). Retry after {self.retry_after} s.",
                    retry_after=self.retry_after,
                )
            self._stats.add("in_flight")
            self._stats.add("requests")
        return Slot(self._stats)


def close_iterator(iterator: Iterator[Any]) -> None:
    """Close an engine iterator so that its clean-up (cancelling the generation) runs.

    A generator closed before its first ``next()`` never enters its body, so its ``finally``
    would not run; such a generator is started first (this waits for its first item)."""
    if inspect.isgenerator(iterator) and inspect.getgeneratorstate(iterator) == inspect.GEN_CREATED:
        try:
            next(iterator)
        except Exception:  # already failed or empty: nothing left to cancel
            return
    close = getattr(iterator, "close", None)
    if close is not None:
        close()


_END = object()


@dataclass(frozen=True)
class _Failure:
    error: BaseException


class ThreadedStream:
    """Runs several blocking iterators in threads; yields ``(source_index, item)`` on the loop.

    ``factories[i]()`` is called inside a worker thread (so even its set-up cost stays off the
    loop). At most ``max_threads`` sources run at once, however many a request brings (a
    streamed completion with a list of prompts): the others wait for a worker. :meth:`get`
    raises whatever a source raised. :meth:`close` stops every source.
    """

    def __init__(
        self,
        factories: Sequence[Callable[[], Iterator[Any]]],
        stats: ServerStats,
        max_threads: int = 8,
    ):
        self._loop = asyncio.get_running_loop()
        self._queue: asyncio.Queue[tuple[int, Any]] = asyncio.Queue()
        self._stop = threading.Event()
        self._stats = stats
        self._open = len(factories)
        self._closed = False
        self._todo = list(enumerate(factories))[::-1]
        self._todo_lock = threading.Lock()
        self._threads = [
            threading.Thread(target=self._work, name=f"logprobe-stream-{i}", daemon=True)
            for i in range(max(1, min(max_threads, len(factories))))
        ]
        for t in self._threads:
            t.start()

    def _work(self) -> None:
        while True:
            with self._todo_lock:
                if not self._todo:
                    return
                index, factory = self._todo.pop()
            if self._stop.is_set():
                self._put((index, _END))
                continue
            self._run(index, factory)

    def _put(self, item: tuple[int, Any]) -> None:
        try:
            self._loop.call_soon_threadsafe(self._queue.put_nowait, item)
        except RuntimeError:  # the loop is gone (server shutting down)
            self._stop.set()

    def _run(self, index: int, factory: Callable[[], Iterator[Any]]) -> None:
        iterator: Iterator[Any] | None = None
        try:
            iterator = factory()
            for item in iterator:
                if self._stop.is_set():
                    break
                self._stats.add("stream_events")
                self._put((index, item))
                if self._stop.is_set():
                    break
        except BaseException as exc:  # handed to the consumer, raised there
            self._put((index, _Failure(exc)))
        finally:
            close = getattr(iterator, "close", None)
            if close is not None:
                close()  # cancels the engine's generation when it stopped early
            self._put((index, _END))

    async def __aiter__(self) -> AsyncIterator[tuple[int, Any]]:
        while self._open:
            index, item = await self._queue.get()
            if item is _END:
                self._open -= 1
                continue
            if isinstance(item, _Failure):
                raise item.error
            yield index, item

    def close(self) -> None:
        """Stop every source (idempotent); counts a cancellation when sources were still live."""
        if not self._closed:
            self._closed = True
            if self._open:
                self._stats.add("streams_cancelled")
            self._stop.set()


class PeekableStream:
    """A :class:`ThreadedStream` whose first item is awaited before the response starts, so
    errors raised on the first step (bad input, context overflow) become proper HTTP errors."""

    def __init__(self, stream: ThreadedStream) -> None:
        self.stream = stream
        self._iter = stream.__aiter__()
        self._first: list[tuple[int, Any]] = []

    async def prime(self) -> None:
        try:
            self._first.append(await self._iter.__anext__())
        except StopAsyncIteration:
            pass

    async def __aiter__(self) -> AsyncIterator[tuple[int, Any]]:
        for item in self._first:
            yield item
        self._first.clear()
        async for item in self._iter:
            yield item

    def close(self) -> None:
        self.stream.close()


class SSEResponse(Response):
    """A ``text/event-stream`` response over an async iterator of ready SSE frames.

    Unlike a plain streaming response it always runs ``on_close`` (stopping the engine work and
    freeing the admission slot) however the response ends: finished, client gone, or error. A
    client disconnect is watched for on ``receive`` and cancels the body at once.
    """

    media_type = "text/event-stream"

    def __init__(self, frames: AsyncIterator[str], on_close: Callable[[], None]) -> None:
        # no body attribute: headers get no Content-Length (as in a streaming response)
        self.status_code = 200
        self.background = None
        self.init_headers({"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
        self._frames = frames
        self._on_close = on_close

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            async with anyio.create_task_group() as tg:

                async def watch_disconnect() -> None:
                    while True:
                        message = await receive()
                        if message["type"] == "http.disconnect":
                            tg.cancel_scope.cancel()
                            return

                tg.start_soon(watch_disconnect)
                try:
                    await send(
                        {
                            "type": "http.response.start",
                            "status": self.status_code,
                            "headers": self.raw_headers,
                        }
                    )
                    async for frame in self._frames:
                        await send(
                            {
                                "type": "http.response.body",
                                "body": frame.encode("utf-8"),
                                "more_body": True,
                            }
                        )
                    await send({"type": "http.response.body", "body": b"", "more_body": False})
                except OSError:  # client disconnected while we were sending
                    pass
                tg.cancel_scope.cancel()
        finally:
            self._on_close()
            aclose = getattr(self._frames, "aclose", None)
            if aclose is not None:
                with anyio.CancelScope(shield=True):
                    await aclose()


def sse_frame(data: str, event: str | None = None) -> str:
    """One server-sent event; ``data`` is already serialised JSON (or ``[DONE]``)."""
    return (f"event: {event}\n" if event else "") + f"data: {data}\n\n"


__all__ = [
    "Admission",
    "PeekableStream",
    "SSEResponse",
    "ServerStats",
    "Slot",
    "ThreadedStream",
    "close_iterator",
    "sse_frame",
]
