"""Generation events for asyncio consumers, handed over once per decode step.

A synchronous consumer reads its job's events from a :class:`queue.SimpleQueue`, one blocking
``get`` per event, in its own thread. That costs a thread per stream and a GIL hand-off per
token, which on a small CPU is what kept several concurrent streams from batching (issue 13). An
asyncio consumer instead gives its job an :class:`AsyncEvents` sink: the scheduler thread only
appends to it, and at the end of each step :meth:`Mailbox.flush` wakes each event loop that has
new events once (one ``call_soon_threadsafe`` per loop per step, however many streams).

    scheduler thread: sink.put(ev) ... sink.put(ev); mailbox.flush()  --one wake-up per loop-->
    event loop:       _wake(sinks) -> each waiting consumer's future resolves -> it drains
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator, Callable
from typing import Any

from .base import StreamEvent


class Mailbox:
    """The scheduler's list of async sinks with events not yet announced to their loops.

    Only the scheduler thread calls :meth:`mark` (through :meth:`AsyncEvents.put`) and
    :meth:`flush`, so it needs no lock.
    """

    def __init__(self) -> None:
        self._touched: list[AsyncEvents] = []

    def mark(self, sink: AsyncEvents) -> None:
        self._touched.append(sink)

    def flush(self) -> None:
        if not self._touched:
            return
        by_loop: dict[asyncio.AbstractEventLoop, list[AsyncEvents]] = {}
        for sink in self._touched:
            by_loop.setdefault(sink.loop, []).append(sink)
        self._touched = []
        for loop, sinks in by_loop.items():
            try:
                loop.call_soon_threadsafe(_wake, sinks)
            except RuntimeError:  # the loop is closed: nobody will read these events
                for sink in sinks:
                    sink.on_lost()


def _wake(sinks: list[AsyncEvents]) -> None:
    for sink in sinks:
        sink.wake()


class AsyncEvents:
    """One job's events: appended by the scheduler thread, read on ``loop``.

    Items are :class:`StreamEvent` values, then ``None`` (the job is over) or an exception.
    ``on_lost`` runs (on the scheduler thread) if the loop closed before it could be woken.
    """

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        mailbox: Mailbox,
        on_lost: Callable[[], None] = lambda: None,
    ) -> None:
        self.loop = loop
        self.on_lost = on_lost
        self._mailbox = mailbox
        self._items: deque[Any] = deque()  # append/popleft are atomic: no lock needed
        self._marked = False
        self._waiter: asyncio.Future[None] | None = None

    # --- scheduler thread -----------------------------------------------------------------------

    def put(self, item: Any) -> None:
        self._items.append(item)
        if not self._marked:
            self._marked = True
            self._mailbox.mark(self)

    # --- event loop -----------------------------------------------------------------------------

    def wake(self) -> None:
        self._marked = False  # a put after this marks again; items before it are drained below
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def get(self) -> Any:
        # no await between the emptiness check and creating the waiter, so a wake cannot fall
        # between them: events appended before a wake are always seen
        while not self._items:
            self._waiter = self.loop.create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        return self._items.popleft()


class AsyncEventStream(AsyncIterator[StreamEvent]):
    """A started generation's events for ``async for`` (from ``LlamaEngine.astream``).

    ``prompt_tokens`` is the prompt's length in tokens. Leaving the loop early, :meth:`close`,
    :meth:`aclose` or garbage collection cancels the generation in the engine.
    """

    def __init__(self, events: AsyncEvents, cancel: Callable[[], None], prompt_tokens: int):
        self._events = events
        self._cancel = cancel
        self._done = False
        self.prompt_tokens = prompt_tokens

    def __aiter__(self) -> AsyncEventStream:
        return self

    async def __anext__(self) -> StreamEvent:
        if self._done:
            raise StopAsyncIteration
        item = await self._events.get()
        if item is None or isinstance(item, BaseException):
            self.close()
            if item is None:
                raise StopAsyncIteration
            raise item
        ev: StreamEvent = item
        return ev

    def close(self) -> None:
        """Stop: the engine drops the generation before its next step (idempotent)."""
        self._done = True
        self._cancel()

    async def aclose(self) -> None:
        self.close()

    async def __aenter__(self) -> AsyncEventStream:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        self._cancel()


__all__ = ["AsyncEventStream", "AsyncEvents", "Mailbox"]
