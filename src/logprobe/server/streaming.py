"""Streams from the engine to the client, admission control, and the SSE response.

The engine is thread-safe and batches concurrent calls internally. A blocking engine call runs in
a worker thread, so the event loop never blocks; a streamed generation needs no thread at all:
the engine's ``astream`` hands each decode step's events to the loop in one wake-up, and an
:class:`EngineStream` merges a response's sources. Closing it (client gone, request over)
cancels the generations in the engine.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import anyio
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from .errors import ServerBusyError

if TYPE_CHECKING:
    from ..engines._aio import AsyncEventStream


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


class Stoppable(Protocol):
    def close(self) -> None: ...


Source = Callable[["EngineStream"], AsyncIterator[Any]]
"""One part of a streamed response (a prompt's generation): called with the stream, which it
tells about every engine stream it opens (:meth:`EngineStream.track`) so that closing the
response cancels them at once."""


@dataclass(frozen=True)
class _Failure:
    error: BaseException


_END = object()


class EngineStream:
    """A streamed response's sources merged into ``(source_index, item)`` pairs, on the loop.

    The engine's :meth:`~logprobe.engines.llamacpp.LlamaEngine.astream` hands events to the
    event loop once per decode step, so no thread runs per stream. A single source (chat,
    responses, one prompt) is read directly; several (a completion with a list of prompts) run as
    tasks, at most ``max_running`` at once. :meth:`close` cancels every engine generation
    opened for this response.
    """

    def __init__(self, sources: Sequence[Source], stats: ServerStats, max_running: int = 8):
        self._sources = list(sources)
        self._stats = stats
        self._max_running = max_running
        self._handles: list[Stoppable] = []
        self._tasks: list[asyncio.Task[None]] = []
        self._open = len(self._sources)
        self._closed = False

    def track(self, handle: Stoppable) -> None:
        """Remember an engine stream to cancel on :meth:`close` (closed at once if already
        closed)."""
        if self._closed:
            handle.close()
        else:
            self._handles.append(handle)

    async def __aiter__(self) -> AsyncIterator[tuple[int, Any]]:
        if len(self._sources) == 1:
            async for item in self._sources[0](self):
                self._stats.add("stream_events")
                yield 0, item
            self._open = 0
            return
        queue: asyncio.Queue[tuple[int, Any]] = asyncio.Queue()
        gate = asyncio.Semaphore(self._max_running)

        async def run(index: int, source: Source) -> None:
            try:
                async with gate:
                    if not self._closed:
                        async for item in source(self):
                            queue.put_nowait((index, item))
            except Exception as exc:  # handed to the consumer, raised there
                queue.put_nowait((index, _Failure(exc)))
            finally:
                queue.put_nowait((index, _END))

        self._tasks = [asyncio.create_task(run(i, s)) for i, s in enumerate(self._sources)]
        while self._open:
            index, item = await queue.get()
            if item is _END:
                self._open -= 1
                continue
            if isinstance(item, _Failure):
                raise item.error
            self._stats.add("stream_events")
            yield index, item

    def close(self) -> None:
        """Stop every source (idempotent); counts a cancellation when sources were still live."""
        if self._closed:
            return
        self._closed = True
        if self._open:
            self._stats.add("streams_cancelled")
        for handle in self._handles:
            handle.close()
        for task in self._tasks:
            task.cancel()


class ThreadedEvents:
    """A blocking engine stream (an engine without ``astream``, such as a remote one) read in
    a worker thread and handed to the loop event by event; :meth:`close` stops the thread and
    closes the engine iterator, which cancels the generation."""

    def __init__(self, open_events: Callable[[], Iterator[Any]]) -> None:
        self._open_events = open_events
        self._loop = asyncio.get_running_loop()
        self._queue: asyncio.Queue[Any] = asyncio.Queue()
        self._stop = threading.Event()
        self._started: asyncio.Future[None] = self._loop.create_future()
        self._done = False

    async def start(self) -> ThreadedEvents:
        """Open the engine stream in the thread; bad input raises here."""
        threading.Thread(target=self._run, name="logprobe-stream", daemon=True).start()
        await self._started
        return self

    def _put(self, item: Any) -> None:
        try:
            self._loop.call_soon_threadsafe(self._queue.put_nowait, item)
        except RuntimeError:  # the loop is gone (server shutting down)
            self._stop.set()

    def _started_with(self, exc: BaseException | None) -> None:
        def settle() -> None:
            if not self._started.done():
                if exc is None:
                    self._started.set_result(None)
                else:
                    self._started.set_exception(exc)

        try:
            self._loop.call_soon_threadsafe(settle)
        except RuntimeError:
            self._stop.set()

    def _run(self) -> None:
        try:
            iterator = self._open_events()
        except BaseException as exc:
            self._started_with(exc)
            return
        self._started_with(None)
        try:
            for item in iterator:
                if self._stop.is_set():
                    break
                self._put(item)
            self._put(None)
        except BaseException as exc:  # handed to the consumer, raised there
            self._put(_Failure(exc))
        finally:
            close = getattr(iterator, "close", None)
            if close is not None:
                close()  # cancels the engine's generation when it stopped early

    def __aiter__(self) -> ThreadedEvents:
        return self

    async def __anext__(self) -> Any:
        if self._done:
            raise StopAsyncIteration
        item = await self._queue.get()
        if item is None:
            self._done = True
            raise StopAsyncIteration
        if isinstance(item, _Failure):
            self._done = True
            raise item.error
        return item

    def close(self) -> None:
        self._done = True
        self._stop.set()


async def open_events(
    engine: Any, prompt: Any, params: Any, *, messages: Any = None
) -> AsyncEventStream | ThreadedEvents:
    """An engine's stream for the event loop: its ``astream`` (one wake-up per decode step, no
    thread) when it has one, else its blocking ``stream`` in a :class:`ThreadedEvents`."""
    astream = getattr(engine, "astream", None)
    if astream is not None:
        events: AsyncEventStream = await astream(prompt, params, messages=messages)
        return events
    return await ThreadedEvents(lambda: engine.stream(prompt, params, messages=messages)).start()


class PeekableStream:
    """An :class:`EngineStream` whose first item is awaited before the response starts, so
    errors raised on the first step (bad input, context overflow) become proper HTTP errors."""

    def __init__(self, stream: EngineStream) -> None:
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
    "EngineStream",
    "PeekableStream",
    "SSEResponse",
    "ServerStats",
    "Slot",
    "Source",
    "ThreadedEvents",
    "open_events",
    "sse_frame",
]
