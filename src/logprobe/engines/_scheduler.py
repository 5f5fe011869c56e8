"""The scheduler thread that owns the llama.cpp context: continuous batching of every caller.

Jobs arrive from any thread. Between decode steps the scheduler drops cancelled sequences,
runs scoring jobs and admits new generation jobs (prefilling their prompt once and sharing its KV
cache with their ``n`` choices); then one ``llama_decode`` advances every active sequence by one
token, and one vectorised pass turns the batch's logits rows into logprobs.

Every sequence has its own KV stream (llama.cpp's non-unified cache) holding its tokens in
position order from cell 0, and ggml runs its per-row reference kernels, so a sequence's logits
do not depend on what else is in the batch (``docs/ENGINE.md``). That layout also makes prompt
prefixes reusable exactly: a finished prompt stays in its stream as a prefix-cache entry, and a
new prompt starting with the same tokens (a chat template's system prompt) continues from it, or
from a copy of a running sequence's stream, instead of decoding them again.

    step:  tokens (m,) -> llama_decode -> logits (m, V) -> sample (m,) -> row_stats -> events
"""

from __future__ import annotations

import threading
from collections import Counter, deque
from collections.abc import Collection, Sequence
from typing import Any

import numpy as np

from ..errors import ContextOverflowError, EngineError, LogprobeError, UnsatisfiableError
from ..types import Alternative, TokenLogprob
from ._aio import Mailbox
from ._jobs import MIN_SHARED_PREFIX, GenJob, ScoreJob, Slots, _Seq, common_prefix
from ._llama import LlamaContext, LlamaModel
from ._logprobs import row_stats
from ._sampling import SequenceSampler
from ._scoring import ScoringSteps
from ._sequence import TextTracker


class Scheduler(ScoringSteps):
    def __init__(self, model: LlamaModel, ctx: LlamaContext) -> None:
        self.model = model
        self.ctx = ctx
        self.n_batch = ctx.cfg.n_batch
        self.n_ctx_seq = ctx.cfg.n_ctx_seq
        self.slots = Slots(ctx.cfg.n_seq_max, cache=ctx.cfg.prefix_cache)
        self.pending: deque[GenJob | ScoreJob] = deque()
        self.active: list[_Seq] = []
        self.cv = threading.Condition()
        self.counters: Counter[str] = Counter()
        self.mailbox = Mailbox()  # async consumers' loops, woken once per step
        self._stopping = False
        self._thread: threading.Thread | None = None
        self.text = [b.decode("utf-8", errors="replace") for b in model.token_bytes]

    # --- public, any thread -----------------------------------------------------------------

    def submit(self, job: GenJob | ScoreJob) -> None:
        need = job.params.n if isinstance(job, GenJob) else 1
        if need > self.slots.n:
            raise ContextOverflowError(
                f"the request needs {need} parallel sequences but the engine has {self.slots.n}",
                param="n",
            )
        with self.cv:
            if self._stopping:
                raise EngineError("the engine is closed")
            self.pending.append(job)
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="logprobe-engine", daemon=True
                )
                self._thread.start()
            self.cv.notify()

    def stop(self) -> bool:
        """Stop the thread; returns True once nothing can touch the context any more. The
        thread finishes the decode call it is in (llama.cpp cannot be interrupted mid-call), so
        the wait is bounded by one step, however long the context."""
        with self.cv:
            self._stopping = True
            self.cv.notify()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join()
        return True

    # --- scheduler thread -------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            with self.cv:
                while not self.pending and not self.active and not self._stopping:
                    self.cv.wait()
                if self._stopping:
                    self._fail_all(EngineError("the engine was closed"))
                    self.mailbox.flush()
                    return
                admitted = self._admit()
            try:
                self._work(admitted)
            except Exception as e:  # a bug must fail the requests in flight, not hang them
                self._reset(admitted, EngineError(f"the engine failed: {e!r}"))
            self.mailbox.flush()

    def _work(self, admitted: list[GenJob | ScoreJob]) -> None:
        for job in admitted:
            if isinstance(job, ScoreJob):
                self._run_score(job)
            else:
                self._start_gen(job)
        if admitted:  # a new job's first token (from its prefill) goes out before the next step
            self.mailbox.flush()
        self._drop_cancelled()
        if self.active:
            try:
                self._compact()
                self._step()
            except LogprobeError as e:
                for s in list(self.active):
                    self._close_seq(s, error=e)
        elif not admitted:
            with self.cv:  # blocked: wait for running work to free resources
                self.cv.wait(timeout=0.01)

    def _reset(self, admitted: list[GenJob | ScoreJob], err: EngineError) -> None:
        """After an unexpected failure: fail every running request and start again from an
        empty KV cache (queued requests stay queued)."""
        for job in admitted:
            if isinstance(job, ScoreJob):
                if job.result is None and job.error is None:
                    job.finish(None, err)
            else:
                job.events.put(err)
                job.cancel()
        for s in self.active:
            s.job.events.put(err)
            s.job.cancel()
        self.active.clear()
        self.ctx.clear()
        self.slots.reset()

    def _admit(self) -> list[GenJob | ScoreJob]:
        """Jobs (FIFO) for which enough sequence slots are free now. They run in this order:
        a generation job keeps its ``n`` slots, a scoring job gives its slots back before the
        next job starts, so only generation jobs use up the budget."""
        out: list[GenJob | ScoreJob] = []
        budget = self.slots.available
        while self.pending:
            job = self.pending[0]
            if job.cancelled:
                self.pending.popleft()
                self.counters["cancelled_sequences"] += (
                    job.params.n if isinstance(job, GenJob) else 0
                )
                continue
            need = job.params.n if isinstance(job, GenJob) else 1
            if budget < need:
                break
            self.pending.popleft()
            if isinstance(job, GenJob):
                budget -= need
            out.append(job)
        return out

    def _fail_all(self, err: BaseException) -> None:
        for s in list(self.active):
            self._close_seq(s, error=err)
        while self.pending:
            job = self.pending.popleft()
            if isinstance(job, ScoreJob):
                job.finish(None, err)
            else:
                job.events.put(err)

    # --- prefill ------------------------------------------------------------------------------

    def _prefill(
        self,
        slot: int,
        ids: Sequence[int],
        start: int,
        want_all: bool,
    ) -> tuple[np.ndarray, list[np.ndarray]]:
        """Decode ``ids`` into ``slot`` from position ``start``; returns (last row copy, rows).

        ``rows`` (only when ``want_all``) are copies of every position's logits, chunk by chunk.
        """
        chunks: list[np.ndarray] = []
        last = None
        n = len(ids)
        for a in range(0, n, self.n_batch):
            b = min(n, a + self.n_batch)
            out = np.zeros(b - a, dtype=bool)
            if want_all:
                out[:] = True
            elif b == n:
                out[-1] = True
            rows = self.ctx.decode(ids[a:b], np.arange(start + a, start + b), [slot] * (b - a), out)
            self.counters["prefill_tokens"] += b - a
            if want_all:
                chunks.append(np.array(rows))
            if b == n:
                last = np.array(rows[-1])
        assert last is not None
        return last, chunks

    def _take(self, near: Collection[int] = ()) -> int:
        """A slot with an empty stream (evicting the least recently used cache entry), next to
        the running sequences or to ``near`` when one is free (see :meth:`Slots.take`)."""
        slot, was_cached = self.slots.take({s.slot for s in self.active} | set(near))
        if was_cached:
            self.ctx.seq_rm(slot)
        return slot

    def _free(self, slot: int, ids: Sequence[int] | None = None) -> None:
        """Give a slot back; with ``ids`` (the tokens its stream holds, from position 0) it
        stays in the prefix cache, otherwise its stream is cleared."""
        if self.slots.give_back(slot, ids):
            self.ctx.seq_rm(slot)

    def _slot_with_prefix(self, ids: list[int], *, usable: int) -> tuple[int, int]:
        """A slot for a prompt ``ids`` and how many of its leading tokens (at most ``usable``)
        the slot's stream already holds: a cached prompt's stream is reused in place, a running
        sequence's stream is copied; either way the tokens sit at their own positions from cell
        0, so the values are those a fresh prefill computes. A request served alone on an empty
        engine shares nothing."""
        best, src = self.slots.best_prefix(ids)
        from_cache = True
        for s in self.active:
            n = common_prefix(s.job.ids, ids)
            if n > best:
                best, src, from_cache = n, s.slot, False
        best = min(best, usable)
        if best < MIN_SHARED_PREFIX:
            return self._take(), 0
        busy = {s.slot for s in self.active}
        dst = self.slots.better_than(src, busy) if from_cache and busy else None
        if from_cache and dst is None:
            self.slots.claim(src)
            slot = src
        elif from_cache and dst is not None:  # keep running slots contiguous: copy it over
            if self.slots.claim(dst):
                self.ctx.seq_rm(dst)
            self.ctx.seq_cp(src, dst)  # the cached entry stays where it was
            slot = dst
            self.counters["moved_prefixes"] += 1
        else:
            slot = self._take()
            self.ctx.seq_cp(src, slot)  # a whole-stream copy (what llama.cpp allows across streams)
        self.ctx.seq_rm(slot, best, -1)
        self.counters["shared_prefix_tokens"] += best
        return slot, best

    def _start_gen(self, job: GenJob) -> None:
        p = job.params
        want_all = p.prompt_logprobs is not None
        slot0, start = (
            (self._take(), 0)
            if want_all
            else self._slot_with_prefix(job.ids, usable=len(job.ids) - 1)
        )  # the last prompt token is decoded for its logits
        job.shared_prefix = start
        slots = [slot0]
        try:
            last, chunks = self._prefill(slot0, job.ids[start:], start, want_all)
            if want_all:
                rows = np.concatenate(chunks)[:-1]
                job.prompt_tokens = tuple(self._first_token(job.ids[0])) + tuple(
                    self._tokens(rows, np.asarray(job.ids[1:]), p.prompt_logprobs or 0)
                )
            for _ in range(1, p.n):
                s = self._take(near=slots)
                slots.append(s)
                self.ctx.seq_cp(slot0, s)
        except LogprobeError as e:
            for s in slots:
                self._free(s)
            job.events.put(e)
            return
        seqs = []
        for i, s in enumerate(slots):
            sampler = SequenceSampler(
                temperature=p.temperature,
                top_p=p.top_p,
                top_k=p.top_k,
                min_p=p.min_p,
                seed=p.seed,
                logit_bias=p.logit_bias,
                presence_penalty=p.presence_penalty,
                frequency_penalty=p.frequency_penalty,
                stream_index=i,
            )
            seqs.append(_Seq(job, i, s, len(job.ids), sampler, TextTracker(i, p.stop)))
        job.open_seqs = len(seqs)
        if p.max_tokens == 0:
            for seq in seqs:
                self._finish(seq, "length")
            return
        self.active.extend(seqs)
        self._advance(seqs, np.repeat(last[None, :], len(seqs), axis=0))

    # --- decode step ----------------------------------------------------------------------------

    def _step(self) -> None:
        # in slot order: llama.cpp decodes separate KV streams in one pass only for runs of
        # consecutive sequence ids (a shuffled batch is split into several passes)
        seqs = sorted(self.active, key=lambda s: s.slot)
        rows = self.ctx.decode(
            [s.last for s in seqs],
            [s.pos for s in seqs],
            [s.slot for s in seqs],
            np.ones(len(seqs), dtype=bool),
        )
        for s in seqs:
            s.pos += 1
        self.counters["decode_steps"] += 1
        self._advance(seqs, rows)

    def _advance(self, seqs: list[_Seq], rows: np.ndarray) -> None:
        """Choose each sequence's next token from its logits row, then emit and finish."""
        m = len(seqs)
        chosen = np.full(m, -1, dtype=np.int64)
        dead: set[int] = set()
        for i, s in enumerate(seqs):
            allowed = s.job.constraint.allowed() if s.job.constraint is not None else None
            if s.sampler.is_identity(allowed):
                continue
            x = s.sampler.process(rows[i], allowed)
            if not np.isfinite(x).any():
                dead.add(i)
                continue
            chosen[i] = s.sampler.choose(x)
            if s.job.params.logprob_mode == "processed":
                rows[i] = x
        k = max((s.job.params.top_logprobs for s in seqs if s.job.params.logprobs), default=0)
        masked = any(s.job.params.logprob_mode == "processed" for s in seqs)
        st = row_stats(rows, chosen, k, masked=masked)
        chosen = np.where(chosen < 0, st.argmax, chosen)
        for i, s in enumerate(seqs):
            if i in dead:
                self._close_seq(
                    s,
                    error=UnsatisfiableError(
                        "the constraint allows no token at this point", param="constraint"
                    ),
                )
                continue
            tok = int(chosen[i])
            if self.model.eog[tok]:
                self._finish(s, "stop")
                continue
            kk = s.job.params.top_logprobs if s.job.params.logprobs else 0
            t = self._token(
                tok,
                st.chosen_logprob[i],
                st.rank[i],
                st.entropy[i],
                st.top_ids[i][:kk] if kk else (),
                st.top_logprobs[i][:kk] if kk else (),
            )
            s.n_gen += 1
            self.counters["generated_tokens"] += 1
            s.sampler.observe(tok)
            if s.job.constraint is not None:
                s.job.constraint.advance(tok)
            for ev in s.tracker.add(t):
                s.job.events.put(ev)
            s.last = tok
            if s.tracker.stop_at is not None or (
                s.job.constraint is not None and s.job.constraint.is_finished()
            ):
                self._finish(s, "stop")
            elif s.n_gen >= s.job.params.max_tokens or s.pos + 1 >= self.n_ctx_seq:
                self._finish(s, "length")

    def _finish(self, s: _Seq, reason: str) -> None:
        for ev in s.tracker.finish(reason):
            s.job.events.put(ev)
        self._close_seq(s)

    def _close_seq(self, s: _Seq, error: BaseException | None = None) -> None:
        if s.done:
            return
        s.done = True
        if s in self.active:
            self.active.remove(s)
        # Each sequence owns its stream, so freeing it cannot move anyone else's cells. The first
        # choice of a finished prompt stays cached: its stream holds the prompt from cell 0.
        keep = s.index == 0 and error is None
        self._free(s.slot, s.job.ids if keep else None)
        s.job.open_seqs -= 1
        if error is not None:
            s.job.events.put(error)
            s.job.cancel()
        if s.job.open_seqs <= 0 or error is not None:
            if error is None:
                s.job.events.put(None)
            for other in [o for o in self.active if o.job is s.job]:
                self._close_seq(other)

    def _compact(self) -> None:
        """Close gaps between running slots: a sequence that finished in the middle leaves one,
        and llama.cpp then splits every step into a pass per run of consecutive ids. The
        highest running sequence moves down into the lowest gap (a whole-stream copy, exact:
        the same cells at the same positions), until the running slots form one run."""
        while len(self.active) > 1:
            busy = {s.slot for s in self.active}
            lo, hi = min(busy), max(busy)
            if hi - lo + 1 == len(busy):
                return
            gap = next(x for x in range(lo, hi) if x not in busy)
            top = max(self.active, key=lambda s: s.slot)
            if self.slots.claim(gap):
                self.ctx.seq_rm(gap)
            self.ctx.seq_cp(top.slot, gap)
            self._free(top.slot)
            top.slot = gap
            self.counters["moved_sequences"] += 1

    def _drop_cancelled(self) -> None:
        for s in [s for s in self.active if s.job.cancelled]:
            self.counters["cancelled_sequences"] += 1
            self._close_seq(s)

    # --- token objects --------------------------------------------------------------------------

    def _token(
        self, tok: int, lp: float, rank: int, ent: float, ids: Any, lps: Any
    ) -> TokenLogprob:
        tb, tx = self.model.token_bytes, self.text
        ids = ids.tolist() if isinstance(ids, np.ndarray) else ids  # Python ints/floats: faster
        lps = lps.tolist() if isinstance(lps, np.ndarray) else lps
        alts = tuple(Alternative(tx[a], tb[a], b, a) for a, b in zip(ids, lps, strict=True))
        return TokenLogprob(tx[tok], tb[tok], float(lp), tok, int(rank), alts, float(ent))

    def _first_token(self, tok: int) -> list[TokenLogprob]:
        return [TokenLogprob(self.text[tok], self.model.token_bytes[tok], None, tok)]

    def _tokens(self, rows: np.ndarray, targets: np.ndarray, k: int) -> list[TokenLogprob]:
        if len(targets) == 0:
            return []
        st = row_stats(rows, targets, k)
        return [
            self._token(
                int(t),
                st.chosen_logprob[i],
                st.rank[i],
                st.entropy[i],
                st.top_ids[i] if k else (),
                st.top_logprobs[i] if k else (),
            )
            for i, t in enumerate(targets)
        ]
