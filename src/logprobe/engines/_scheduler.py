"""The scheduler thread that owns the llama.cpp context: continuous batching of every caller.

Jobs arrive from any thread. Between decode steps the scheduler drops cancelled sequences,
runs scoring jobs and admits new generation jobs (prefilling their prompt once and sharing its KV
cache with their ``n`` choices; a prompt prefix that a running sequence already holds, such as a
chat template's system prompt, is copied from it instead of decoded again); then one
``llama_decode`` advances every active sequence by one token, and one vectorised pass turns the
batch's logits rows into logprobs.

    step:  tokens (m,) -> llama_decode -> logits (m, V) -> sample (m,) -> row_stats -> events
"""

from __future__ import annotations

import threading
from collections import Counter, deque
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..errors import ContextOverflowError, EngineError, LogprobeError, UnsatisfiableError
from ..types import Alternative, TokenLogprob
from ._jobs import MIN_SHARED_PREFIX, GenJob, ScoreJob, _Seq, _Slots, common_prefix
from ._llama import LlamaContext, LlamaModel
from ._logprobs import row_stats
from ._sampling import SequenceSampler
from ._sequence import TextTracker


class Scheduler:
    def __init__(self, model: LlamaModel, ctx: LlamaContext) -> None:
        self.model = model
        self.ctx = ctx
        self.n_batch = ctx.cfg.n_batch
        self.n_ctx_seq = min(ctx.cfg.n_ctx, model.n_ctx_train or ctx.cfg.n_ctx)
        self.slots = _Slots(free=list(range(ctx.cfg.n_seq_max))[::-1], cells_free=ctx.cfg.n_ctx)
        self.pending: deque[GenJob | ScoreJob] = deque()
        self.active: list[_Seq] = []
        self.cv = threading.Condition()
        self.counters: Counter[str] = Counter()
        self._stopping = False
        self._retired: list[int] = []
        self._thread: threading.Thread | None = None
        self.text = [b.decode("utf-8", errors="replace") for b in model.token_bytes]

    # --- public, any thread -----------------------------------------------------------------

    def submit(self, job: GenJob | ScoreJob) -> None:
        if job.reserve > self.ctx.cfg.n_ctx:
            raise ContextOverflowError(
                f"the request needs {job.reserve} KV-cache cells but the engine has "
                f"{self.ctx.cfg.n_ctx}: lower n or max_tokens, or start it with a larger n_ctx",
                param="max_tokens",
            )
        with self.cv:
            if self._stopping:
                raise EngineError("the engine is closed")
            self.pending.append(job)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="logprobe-engine",
                                                daemon=True)
                self._thread.start()
            self.cv.notify()

    def stop(self) -> None:
        with self.cv:
            self._stopping = True
            self.cv.notify()
        if self._thread is not None:
            self._thread.join(timeout=30)

    # --- scheduler thread -------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            with self.cv:
                while not self.pending and not self.active and not self._stopping:
                    self.cv.wait()
                if self._stopping:
                    self._fail_all(EngineError("the engine was closed"))
                    return
                admitted = self._admit()
            try:
                self._work(admitted)
            except Exception as e:  # a bug must fail the requests in flight, not hang them
                self._reset(admitted, EngineError(f"the engine failed: {e!r}"))

    def _work(self, admitted: list[GenJob | ScoreJob]) -> None:
        for job in admitted:
            if isinstance(job, ScoreJob):
                self._run_score(job)
            else:
                self._start_gen(job)
        self._drop_cancelled()
        if self.active:
            try:
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
        self._retired.clear()
        self.ctx.clear()
        n = self.ctx.cfg.n_seq_max
        self.slots = _Slots(free=list(range(n))[::-1], cells_free=self.ctx.cfg.n_ctx)

    def _admit(self) -> list[GenJob | ScoreJob]:
        """Jobs (FIFO) whose slots and KV cells are free now; reserves them."""
        out: list[GenJob | ScoreJob] = []
        while self.pending:
            job = self.pending[0]
            if job.cancelled:
                self.pending.popleft()
                self.counters["cancelled_sequences"] += (
                    job.params.n if isinstance(job, GenJob) else 0)
                continue
            need = job.params.n if isinstance(job, GenJob) else 1
            if isinstance(job, ScoreJob) and any(p for p, _, _ in job.reqs):
                need = 2  # the shared prefix's slot plus at least one continuation
            if self._retired:
                self._flush_retired()  # a new job needs cells and slots: free them now
            if len(self.slots.free) < need or self.slots.cells_free < job.reserve:
                break
            self.pending.popleft()
            self.slots.cells_free -= job.reserve
            self.slots.held[id(job)] = job.reserve
            out.append(job)
        return out

    def _release(self, job: GenJob | ScoreJob) -> None:
        self.slots.cells_free += self.slots.held.pop(id(job), 0)

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

    def _prefill(self, slot: int, ids: Sequence[int], start: int, want_all: bool,
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

    def _share_prefix(self, ids: list[int], slot: int) -> int:
        """Copy into ``slot`` the KV cache of the longest prompt prefix that a running sequence
        already holds (concurrent chats share their template's system prompt); returns how many
        leading tokens need no decoding. Their KV values are those the running sequence computed
        for the same tokens at the same positions. A request served alone shares nothing."""
        best, src = 0, -1
        for s in self.active:
            n = common_prefix(s.job.ids, ids)
            if n > best:
                best, src = n, s.slot
        best = min(best, len(ids) - 1)  # the last prompt token is decoded for its logits
        if best < MIN_SHARED_PREFIX:
            return 0
        self.ctx.seq_cp(src, slot, 0, best)
        self.counters["shared_prefix_tokens"] += best
        return best

    def _start_gen(self, job: GenJob) -> None:
        p = job.params
        slot0 = self.slots.free.pop()
        slots = [slot0]
        try:
            want_all = p.prompt_logprobs is not None
            start = 0 if want_all else self._share_prefix(job.ids, slot0)
            last, chunks = self._prefill(slot0, job.ids[start:], start, want_all)
            if want_all:
                rows = np.concatenate(chunks)[:-1]
                job.prompt_tokens = tuple(
                    self._first_token(job.ids[0])) + tuple(
                    self._tokens(rows, np.asarray(job.ids[1:]), p.prompt_logprobs or 0))
            for i in range(1, p.n):
                s = self.slots.free.pop()
                slots.append(s)
                self.ctx.seq_cp(slot0, s)
        except LogprobeError as e:
            for s in slots:
                self.ctx.seq_rm(s)
                self.slots.free.append(s)
            self._release(job)
            job.events.put(e)
            return
        seqs = []
        for i, s in enumerate(slots):
            sampler = SequenceSampler(
                temperature=p.temperature, top_p=p.top_p, top_k=p.top_k, min_p=p.min_p,
                seed=p.seed, logit_bias=p.logit_bias, presence_penalty=p.presence_penalty,
                frequency_penalty=p.frequency_penalty, stream_index=i,
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
        seqs = list(self.active)
        rows = self.ctx.decode(
            [s.last for s in seqs], [s.pos for s in seqs], [s.slot for s in seqs],
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
                self._close_seq(s, error=UnsatisfiableError(
                    "the constraint allows no token at this point", param="constraint"))
                continue
            tok = int(chosen[i])
            if self.model.eog[tok]:
                self._finish(s, "stop")
                continue
            kk = s.job.params.top_logprobs if s.job.params.logprobs else 0
            t = self._token(tok, st.chosen_logprob[i], st.rank[i], st.entropy[i],
                            st.top_ids[i][:kk] if kk else (), st.top_logprobs[i][:kk] if kk else ())
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
        # The finished sequence's KV cells stay in place while others are decoding: freeing them
        # mid-batch lets llama.cpp put the survivors' next tokens into the holes, which changes
        # their attention's summation order (seen as ~0.05 logprob drift). Freed when idle.
        self._retired.append(s.slot)
        if not self.active or not self.slots.free:
            self._flush_retired()
        s.job.open_seqs -= 1
        if error is not None:
            s.job.events.put(error)
            s.job.cancel()
        if s.job.open_seqs <= 0 or error is not None:
            if error is None:
                s.job.events.put(None)
            for other in [o for o in self.active if o.job is s.job]:
                self._close_seq(other)
            self._release(s.job)

    def _flush_retired(self) -> None:
        for slot in self._retired:
            self.ctx.seq_rm(slot)
            self.slots.free.append(slot)
        self._retired.clear()

    def _drop_cancelled(self) -> None:
        for s in [s for s in self.active if s.job.cancelled]:
            self.counters["cancelled_sequences"] += 1
            self._close_seq(s)

    # --- token objects --------------------------------------------------------------------------

    def _token(self, tok: int, lp: float, rank: int, ent: float, ids: Any, lps: Any
               ) -> TokenLogprob:
        tb, tx = self.model.token_bytes, self.text
        alts = tuple(Alternative(tx[a], tb[a], float(b), int(a)) for a, b in zip(ids, lps,
                                                                              strict=True))
        return TokenLogprob(tx[tok], tb[tok], float(lp), tok, int(rank), alts, float(ent))

    def _first_token(self, tok: int) -> list[TokenLogprob]:
        return [TokenLogprob(self.text[tok], self.model.token_bytes[tok], None, tok)]

    def _tokens(self, rows: np.ndarray, targets: np.ndarray, k: int) -> list[TokenLogprob]:
        if len(targets) == 0:
            return []
        st = row_stats(rows, targets, k)
        return [
            self._token(int(t), st.chosen_logprob[i], st.rank[i], st.entropy[i],
                        st.top_ids[i] if k else (), st.top_logprobs[i] if k else ())
            for i, t in enumerate(targets)
        ]

    # --- scoring --------------------------------------------------------------------------------

    def _run_score(self, job: ScoreJob) -> None:
        try:
            result = self._score(job)
        except LogprobeError as e:
            job.finish(None, e)
        except Exception as e:  # pragma: no cover - a bug must not kill the scheduler
            job.finish(None, EngineError(f"scoring failed: {e!r}"))
        else:
            job.finish(result, None)
        finally:
            self._release(job)

    def _score(self, job: ScoreJob) -> list[list[TokenLogprob]]:
        out: list[list[TokenLogprob] | None] = [None] * len(job.reqs)
        groups: dict[tuple[int, ...], list[int]] = {}
        for i, (pids, _, _) in enumerate(job.reqs):
            groups.setdefault(tuple(pids), []).append(i)
        for prefix, idxs in groups.items():
            self._score_group(job, list(prefix), idxs, out)
        return [o if o is not None else [] for o in out]

    def _score_group(self, job: ScoreJob, prefix: list[int], idxs: list[int],
                     out: list[list[TokenLogprob] | None]) -> None:
        """Score continuations sharing ``prefix``: prefill it once, copy its cache, batch the rest."""
        base = None
        first_row = None
        if prefix:
            base = self.slots.free.pop()
            try:
                first_row, _ = self._prefill(base, prefix, 0, False)
            except BaseException:
                self.ctx.seq_rm(base)
                self.slots.free.append(base)
                raise
        try:
            width = max(1, len(self.slots.free))
            cells = self.ctx.cfg.n_ctx - len(prefix)
            i = 0
            while i < len(idxs):
                group: list[int] = []
                used = 0
                while i < len(idxs) and len(group) < width:
                    c = len(job.reqs[idxs[i]][1])
                    if group and used + c > cells:
                        break
                    group.append(idxs[i])
                    used += c
                    i += 1
                self._score_batch(job, prefix, base, first_row, group, out)
        finally:
            if base is not None:
                self.ctx.seq_rm(base)
                self.slots.free.append(base)

    def _score_batch(self, job: ScoreJob, prefix: list[int], base: int | None,
                     first_row: np.ndarray | None, group: list[int],
                     out: list[list[TokenLogprob] | None]) -> None:
        slots = [self.slots.free.pop() for _ in group]
        try:
            toks: list[int] = []
            poss: list[int] = []
            seqs: list[int] = []
            owner: list[tuple[int, int]] = []
            for j, (slot, r) in enumerate(zip(slots, group, strict=True)):
                cids = job.reqs[r][1]
                if base is not None and first_row is not None:
                    self.ctx.seq_cp(base, slot)
                    first = self._tokens(first_row[None, :], np.asarray(cids[:1]), job.k)
                else:
                    first = self._first_token(cids[0])
                out[r] = first
                n_in = len(cids) - 1  # the last token is never an input
                toks.extend(cids[:n_in])
                poss.extend(range(len(prefix), len(prefix) + n_in))
                seqs.extend([slot] * n_in)
                owner.extend([(r, t) for t in range(1, n_in + 1)])
            for a in range(0, len(toks), self.n_batch):
                b = min(len(toks), a + self.n_batch)
                rows = self.ctx.decode(toks[a:b], poss[a:b], seqs[a:b], np.ones(b - a, bool))
                self.counters["scored_tokens"] += b - a
                targets = np.asarray([job.reqs[r][1][t] for r, t in owner[a:b]])
                for (r, _), tl in zip(owner[a:b], self._tokens(rows, targets, job.k),
                                      strict=True):
                    out[r].append(tl)  # type: ignore[union-attr]
        finally:
            for s in slots:
                self.ctx.seq_rm(s)
                self.slots.free.append(s)
