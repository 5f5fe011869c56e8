"""Slot choice keeps running sequences on consecutive ids: llama.cpp decodes separate KV streams
in one pass only for runs of consecutive sequence ids, so every gap costs each decode step an
extra pass."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from logprobe import LlamaEngine
from logprobe.engines._jobs import Slots, runs_with


def _runs(ids: set[int]) -> int:
    s = sorted(ids)
    return 0 if not s else 1 + sum(1 for a, b in zip(s, s[1:], strict=False) if b != a + 1)


@given(
    busy=st.sets(st.integers(0, 11), max_size=8),
    cached=st.sets(st.integers(0, 11), max_size=6),
)
def test_take_never_leaves_more_runs_than_needed(busy: set[int], cached: set[int]) -> None:
    slots = Slots(12)
    free = [s for s in range(12) if s not in busy]
    if not free:
        return
    slots.empty = [s for s in free if s not in cached]
    for s in sorted(cached - busy):
        slots.cached[s] = list(range(10))
    slot, was_cached = slots.take(busy)
    assert slot in free and slot not in busy
    assert was_cached == (slot in cached)
    assert _runs(busy | {slot}) == min(_runs(busy | {s}) for s in free)
    assert runs_with(busy, slot) == _runs(busy | {slot})


def test_gaps_are_filled_and_empty_slots_come_before_cached_ones() -> None:
    slots = Slots(8)
    slots.empty = [4, 5, 6, 7]
    slots.cached[1] = list(range(10))
    assert slots.take({0, 2, 3}) == (1, True)  # fills the gap, even at the cost of a cache entry
    slots.cached[1] = list(range(10))
    assert slots.take({0}) == (1, True)  # adjacent beats isolated
    slots.cached[6] = list(range(10))
    slots.empty = [5, 7]
    assert slots.take({4}) == (5, False)  # both adjacent: the empty one


def test_a_cached_prefix_far_from_the_running_sequences_is_copied_next_to_them() -> None:
    slots = Slots(8)
    slots.empty = [2, 3, 4, 5, 7]
    slots.cached[6] = list(range(10))
    assert slots.better_than(6, {0, 1}) == 2
    assert slots.better_than(2, {0, 1}) is None
    assert slots.better_than(6, set()) is None or runs_with(set(), 6) > 1


def test_concurrent_streams_run_on_consecutive_slots() -> None:
    """Four streams on an 8-sequence engine, started one after another while others run
    (and after other prompts were cached), occupy one run of consecutive slots until the first
    of them finishes (a finished one in the middle leaves a gap until a new request fills it)."""
    eng = LlamaEngine(n_seq_max=8, n_threads=2)
    sched = eng._sched
    steps: list[set[int]] = []
    closed: list[int] = []
    step, close = sched._step, sched._close_seq

    def recording_step() -> None:  # runs on the scheduler thread: a consistent view
        if not closed:
            steps.append({s.slot for s in sched.active})
        step()

    def recording_close(s: Any, error: BaseException | None = None) -> None:
        closed.append(s.slot)
        close(s, error=error)

    try:
        # six prompts at once, then cached in six slots; three of them come back below
        words = ["cat", "dog", "city", "sea", "car", "sun"]
        first = [f"Question {i}: name a {w}." for i, w in enumerate(words)]

        def chat(q: str) -> Any:
            return eng.chat([{"role": "user", "content": q}], max_tokens=2)

        with ThreadPoolExecutor(6) as pool:
            list(pool.map(chat, first))
        sched._close_seq = recording_close  # type: ignore[method-assign]
        sched._step = recording_step  # type: ignore[method-assign]
        no_end = {i: -100.0 for i in eng.eog_ids}

        async def one(q: str) -> None:
            events = await eng.astream(
                messages=[{"role": "user", "content": q}],
                max_tokens=40,
                temperature=0,
                logit_bias=no_end,
            )
            async for _ in events:
                pass

        async def main() -> None:
            tasks = []
            for q in (first[1], first[3], first[5], "Count to five."):
                tasks.append(asyncio.create_task(one(q)))
                await asyncio.sleep(0.03)
            await asyncio.gather(*tasks)

        asyncio.run(main())
        assert max(len(s) for s in steps) == 4  # all four ran together
        assert all(_runs(s) == 1 for s in steps), [sorted(s) for s in steps if _runs(s) > 1]
    finally:
        eng.close()


def test_a_sequence_finishing_in_the_middle_is_compacted_away_exactly() -> None:
    """When a sequence in the middle of the running slots finishes, the highest one moves into
    the gap (a whole-stream copy): later steps decode one run of slots, and every stream's
    tokens and logprobs equal those it gets served alone."""
    eng = LlamaEngine(n_seq_max=8, n_threads=2)
    sched = eng._sched
    try:
        no_end = {i: -100.0 for i in eng.eog_ids}
        asks = [("Describe a forest.", 30), ("Say yes.", 6), ("Describe the sea.", 24)]

        def kw(n: int) -> dict[str, Any]:
            return dict(max_tokens=n, temperature=0, top_logprobs=3, logit_bias=no_end)

        def key(c: Any) -> list[Any]:
            return [(t.id, t.logprob, [(a.id, a.logprob) for a in t.top_logprobs]) for t in c]

        alone = [key(eng.chat([{"role": "user", "content": q}], **kw(n)).tokens) for q, n in asks]
        steps: list[set[int]] = []
        step = sched._step

        def recording_step() -> None:
            steps.append({s.slot for s in sched.active})
            step()

        sched._step = recording_step  # type: ignore[method-assign]
        before = eng.stats.get("moved_sequences", 0)

        async def one(q: str, n: int) -> list[Any]:
            events = await eng.astream(messages=[{"role": "user", "content": q}], **kw(n))
            return key([ev.token async for ev in events if ev.token is not None])

        async def main() -> list[list[Any]]:
            tasks = []
            for q, n in asks:  # in this order, so the short one runs between the others
                tasks.append(asyncio.create_task(one(q, n)))
                await asyncio.sleep(0.03)
            return list(await asyncio.gather(*tasks))

        together = asyncio.run(main())
        assert together == alone
        assert max(len(s) for s in steps) == 3
        assert eng.stats.get("moved_sequences", 0) > before  # the short one left a gap
        assert all(_runs(s) == 1 for s in steps), [sorted(s) for s in steps if _runs(s) > 1]
    finally:
        eng.close()
