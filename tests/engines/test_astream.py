"""``LlamaEngine.astream``: the asyncio stream the server uses (one loop wake-up per decode step,
no thread per stream) gives exactly the events of the blocking ``stream``, and cancels like it."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import pytest

from logprobe.engines import AsyncEventStream, StreamEvent
from logprobe.engines._aio import AsyncEvents, Mailbox
from logprobe.errors import ContextOverflowError, InvalidRequestError

CHATS = [
    [{"role": "user", "content": "Name three colours."}],
    [{"role": "user", "content": "What is 2 + 2?"}],
    [{"role": "user", "content": "Say hello in French."}],
    [{"role": "user", "content": "Write a haiku about rain."}],
]


def _key(events: list[StreamEvent]) -> list[Any]:
    return [
        (
            e.index,
            e.text,
            e.finish_reason,
            None
            if e.token is None
            else (
                e.token.id,
                e.token.logprob,
                e.token.rank,
                e.token.entropy,
                [(a.id, a.logprob) for a in e.token.top_logprobs],
            ),
        )
        for e in events
    ]


async def _collect(engine: Any, **kw: Any) -> tuple[list[StreamEvent], int]:
    events = await engine.astream(**kw)
    assert isinstance(events, AsyncEventStream)
    return [ev async for ev in events], events.prompt_tokens


def test_astream_equals_stream_bit_for_bit(engine: Any) -> None:
    kw: dict[str, Any] = dict(max_tokens=12, temperature=0, logprobs=True, top_logprobs=5)
    want = list(engine.stream(messages=CHATS[0], **kw))
    got, n_prompt = asyncio.run(_collect(engine, messages=CHATS[0], **kw))
    assert _key(got) == _key(want)
    assert n_prompt == engine.chat(CHATS[0], max_tokens=1).usage.prompt_tokens
    assert got[-1].finish_reason in ("stop", "length")


def test_concurrent_astreams_on_one_loop_equal_each_alone(engine: Any) -> None:
    """Four streams on one event loop batch together in the engine (several sequences per
    step, woken once per step), and each still gets exactly its own numbers served alone."""
    kw: dict[str, Any] = dict(max_tokens=16, temperature=0, logprobs=True, top_logprobs=3)
    alone = [_key(list(engine.stream(messages=m, **kw))) for m in CHATS]

    async def together() -> list[list[StreamEvent]]:
        results = await asyncio.gather(*(_collect(engine, messages=m, **kw) for m in CHATS))
        return [r[0] for r in results]

    steps_before = engine.stats["decode_steps"]
    got = asyncio.run(together())
    steps = engine.stats["decode_steps"] - steps_before
    assert [_key(g) for g in got] == alone
    n_tokens = sum(1 for g in got for e in g if e.token is not None)
    assert steps < n_tokens  # sequences shared decode steps


def test_astream_n_choices_and_prompt_text(engine: Any) -> None:
    kw: dict[str, Any] = dict(max_tokens=6, temperature=0.9, seed=3, n=2, logprobs=True)
    want = list(engine.stream("Once upon a time", **kw))
    got, n_prompt = asyncio.run(_collect(engine, prompt="Once upon a time", **kw))
    assert _key(got) == _key(want)
    assert {e.index for e in got} == {0, 1}
    assert n_prompt == len(engine.tokenize("Once upon a time", add_bos=True))


def test_bad_input_raises_at_the_await(engine: Any) -> None:
    async def run(**kw: Any) -> None:
        await engine.astream(**kw)

    with pytest.raises(InvalidRequestError):
        asyncio.run(run(prompt=""))
    with pytest.raises(InvalidRequestError):
        asyncio.run(run(prompt="a", messages=CHATS[0]))
    with pytest.raises(ContextOverflowError):
        asyncio.run(run(prompt="hello", max_tokens=10**6))


def test_leaving_early_cancels_the_generation(engine: Any) -> None:
    async def run() -> int:
        events = await engine.astream(messages=CHATS[3], max_tokens=400, temperature=0)
        got = 0
        async for ev in events:
            got += ev.token is not None
            if got == 3:
                break
        events.close()
        return got

    before = engine.stats.get("cancelled_sequences", 0)
    assert asyncio.run(run()) == 3
    deadline = time.monotonic() + 30
    while engine.stats.get("cancelled_sequences", 0) == before and time.monotonic() < deadline:
        time.sleep(0.01)
    assert engine.stats.get("cancelled_sequences", 0) > before
    # the engine is free again: a new request completes
    assert engine.complete("Hi", max_tokens=2, temperature=0).choices[0].finish_reason


def test_mailbox_wakes_each_loop_once_per_flush() -> None:
    """Events put by another thread reach the loop with one call_soon_threadsafe per flush,
    however many sinks got events, and none is lost."""
    mailbox = Mailbox()
    calls = 0

    async def main() -> list[list[Any]]:
        nonlocal calls
        loop = asyncio.get_running_loop()
        real = loop.call_soon_threadsafe

        def counting(*args: Any) -> Any:
            nonlocal calls
            calls += 1
            return real(*args)

        loop.call_soon_threadsafe = counting  # type: ignore[method-assign]
        sinks = [AsyncEvents(loop, mailbox) for _ in range(3)]

        def producer() -> None:  # the scheduler thread's part: 5 steps
            for step in range(5):
                for i, s in enumerate(sinks):
                    s.put((i, step))
                mailbox.flush()
            for s in sinks:
                s.put(None)
            mailbox.flush()

        async def consume(s: AsyncEvents) -> list[Any]:
            out = []
            while (item := await s.get()) is not None:
                out.append(item)
            return out

        t = threading.Thread(target=producer)
        t.start()
        got = await asyncio.gather(*(consume(s) for s in sinks))
        t.join()
        return list(got)

    got = asyncio.run(main())
    assert got == [[(i, step) for step in range(5)] for i in range(3)]
    assert 1 <= calls <= 6  # at most one wake-up per flush, never one per event


def test_a_closed_loop_cancels_its_sinks() -> None:
    loop = asyncio.new_event_loop()
    loop.close()
    lost: list[int] = []
    mailbox = Mailbox()
    sink = AsyncEvents(loop, mailbox, on_lost=lambda: lost.append(1))
    sink.put(StreamEvent(0))
    mailbox.flush()
    assert lost == [1]


def test_no_event_waits_for_a_decode_step(engine: Any) -> None:
    """Every event put before a decode step has been announced to its loop when the step starts:
    a new request's first token (made by its prefill) does not wait for the next step (~6 ms)."""
    sched = engine._sched
    step = sched._step
    pending: list[int] = []

    def checking_step() -> None:
        pending.append(len(sched.mailbox._touched))
        step()

    sched._step = checking_step
    try:

        async def run() -> None:
            async def one(q: str) -> None:
                events = await engine.astream(prompt=q, max_tokens=6, temperature=0)
                async for _ in events:
                    pass

            await asyncio.gather(one("Once"), one("Twice upon"), one("Three"))

        asyncio.run(run())
    finally:
        del sched._step  # back to the class's method
    assert pending and set(pending) == {0}
