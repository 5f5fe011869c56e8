"""Teacher-forced scoring inside the scheduler thread: a :class:`ScoreJob`'s texts are grouped by
shared prefix; each prefix is prefilled once (or reused from the prefix cache or a running
sequence), its KV stream copied to one slot per continuation, and the continuations decoded
together. Mixed into :class:`~._scheduler.Scheduler`, whose slots, context and token helpers it
uses.

    group: prefix ids -> prefill (or reuse) -> copy stream x k -> decode continuations -> rows
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Sequence

import numpy as np

from ..errors import EngineError, LogprobeError
from ..types import TokenLogprob
from ._jobs import ScoreJob, Slots
from ._llama import LlamaContext


class ScoringSteps:
    """The scoring half of the scheduler (runs in the scheduler thread only)."""

    ctx: LlamaContext
    slots: Slots
    counters: Counter[str]
    n_batch: int

    # provided by the scheduler
    def _take(self, near: Collection[int] = ()) -> int:
        raise NotImplementedError

    def _free(self, slot: int, ids: Sequence[int] | None = None) -> None:
        raise NotImplementedError

    def _slot_with_prefix(self, ids: list[int], *, usable: int) -> tuple[int, int]:
        raise NotImplementedError

    def _prefill(
        self, slot: int, ids: Sequence[int], start: int, want_all: bool
    ) -> tuple[np.ndarray, list[np.ndarray]]:
        raise NotImplementedError

    def _first_token(self, tok: int) -> list[TokenLogprob]:
        raise NotImplementedError

    def _tokens(self, rows: np.ndarray, targets: np.ndarray, k: int) -> list[TokenLogprob]:
        raise NotImplementedError

    def _run_score(self, job: ScoreJob) -> None:
        try:
            result = self._score(job)
        except LogprobeError as e:
            job.finish(None, e)
        except Exception as e:  # pragma: no cover - a bug must not kill the scheduler
            job.finish(None, EngineError(f"scoring failed: {e!r}"))
        else:
            job.finish(result, None)

    def _score(self, job: ScoreJob) -> list[list[TokenLogprob]]:
        out: list[list[TokenLogprob] | None] = [None] * len(job.reqs)
        groups: dict[tuple[int, ...], list[int]] = {}
        for i, (pids, _, _) in enumerate(job.reqs):
            groups.setdefault(tuple(pids), []).append(i)
        for prefix, idxs in groups.items():
            self._score_group(job, list(prefix), idxs, out)
        return [o if o is not None else [] for o in out]

    def _score_group(
        self,
        job: ScoreJob,
        prefix: list[int],
        idxs: list[int],
        out: list[list[TokenLogprob] | None],
    ) -> None:
        """Score continuations sharing ``prefix``: prefill it once (or reuse a cached or running
        prefix), copy its stream to each continuation, decode the continuations together."""
        base = None
        first_row = None
        if prefix:
            base, start = self._slot_with_prefix(prefix, usable=len(prefix) - 1)
            try:
                first_row, _ = self._prefill(base, prefix[start:], start, False)
            except BaseException:
                self._free(base)
                raise
        try:
            width = self.slots.available
            i = 0
            while i < len(idxs):
                group = idxs[i : i + max(1, width)]
                i += len(group)
                self._score_batch(job, prefix, base, first_row, group, out, in_base=width == 0)
        finally:
            if base is not None:
                self._free(base, prefix)

    def _score_batch(
        self,
        job: ScoreJob,
        prefix: list[int],
        base: int | None,
        first_row: np.ndarray | None,
        group: list[int],
        out: list[list[TokenLogprob] | None],
        *,
        in_base: bool = False,
    ) -> None:
        """Decode ``group``'s continuations together, each in a copy of the prefix's stream;
        ``in_base`` (an engine with one sequence) decodes one continuation in the prefix's own
        stream and trims it back to the prefix afterwards."""
        if in_base and base is not None:
            slots = [base]
        else:  # adjacent ids, ascending: llama.cpp then decodes the streams in one pass
            slots = []
            for _ in group:
                slots.append(self._take(near=slots))
            slots.sort()
        try:
            toks: list[int] = []
            poss: list[int] = []
            seqs: list[int] = []
            owner: list[tuple[int, int]] = []
            for slot, r in zip(slots, group, strict=True):
                cids = job.reqs[r][1]
                if base is not None and first_row is not None:
                    if slot != base:
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
                for (r, _), tl in zip(owner[a:b], self._tokens(rows, targets, job.k), strict=True):
                    out[r].append(tl)  # type: ignore[union-attr]
        finally:
            for s in slots:
                if s == base:
                    self.ctx.seq_rm(s, len(prefix), -1)
                else:
                    self._free(s)
