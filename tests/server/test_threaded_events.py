"""The fallback for engines without ``astream`` (a remote engine in the viewer's playground):
their blocking stream read in a worker thread gives the same events, raises bad input at the
start, and closing it cancels the generation."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from logprobe.engines import GenerationParams
from logprobe.errors import InvalidRequestError
from logprobe.server.streaming import ThreadedEvents, open_events

CHAT = [{"role": "user", "content": "List four fruits."}]


class BlockingOnly:
    """The real engine with only its blocking ``stream`` (as a remote engine has)."""

    def __init__(self, engine: Any) -> None:
        self._engine = engine

    def stream(self, *args: Any, **kw: Any) -> Any:
        return self._engine.stream(*args, **kw)


def test_fallback_gives_the_blocking_streams_events(engine: Any) -> None:
    params = GenerationParams(max_tokens=10, temperature=0, logprobs=True, top_logprobs=2)
    want = [
        (e.index, e.text, e.token, e.finish_reason)
        for e in engine.stream(None, params, messages=CHAT)
    ]

    async def run() -> list[Any]:
        events = await open_events(BlockingOnly(engine), None, params, messages=CHAT)
        assert isinstance(events, ThreadedEvents)
        return [(e.index, e.text, e.token, e.finish_reason) async for e in events]

    assert asyncio.run(run()) == want


def test_fallback_raises_bad_input_at_the_start(engine: Any) -> None:
    async def run() -> None:
        await open_events(BlockingOnly(engine), "", GenerationParams(max_tokens=3))

    with pytest.raises(InvalidRequestError):
        asyncio.run(run())


def test_closing_the_fallback_cancels_the_generation(engine: Any) -> None:
    params = GenerationParams(max_tokens=400, temperature=0)

    async def run() -> int:
        events = await open_events(BlockingOnly(engine), None, params, messages=CHAT)
        seen = 0
        async for ev in events:
            seen += ev.token is not None
            if seen == 2:
                events.close()
                break
        return seen

    before = engine.stats.get("cancelled_sequences", 0)
    assert asyncio.run(run()) == 2
    deadline = time.monotonic() + 30
    while engine.stats.get("cancelled_sequences", 0) == before and time.monotonic() < deadline:
        time.sleep(0.01)
    assert engine.stats.get("cancelled_sequences", 0) > before
