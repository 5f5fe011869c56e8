"""Token selection in numpy: logit bias, penalties, constraint mask, temperature, top-k/p, min-p.

The same function yields the *processed* logits (the distribution actually sampled from) so that
``logprob_mode="processed"`` reports exactly what was sampled. Greedy (temperature 0) takes the
argmax of the processed logits without scaling.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

_TOP_P_EPS_LOGIT = 25.0
"""Tokens more than this many nats below the best one (p < 1.4e-11 relative) are left out of the
top-p sort; their total mass is below V * 1.4e-11 (< 1e-6 for V = 49k), so only a top-p above
1 - 1e-6 could include them, and then everything is kept."""


class SequenceSampler:
    """Per-sequence sampling state: its random generator and token counts (for penalties)."""

    def __init__(
        self,
        *,
        temperature: float,
        top_p: float,
        top_k: int,
        min_p: float,
        seed: int | None,
        logit_bias: Mapping[int, float],
        presence_penalty: float,
        frequency_penalty: float,
        stream_index: int = 0,
    ) -> None:
        self.temperature = temperature
        self.top_p = top_p
        self.top_k = top_k
        self.min_p = min_p
        self.rng = np.random.default_rng(None if seed is None else [seed % 2**64, stream_index])
        self.bias_ids = np.fromiter(logit_bias.keys(), dtype=np.int64, count=len(logit_bias))
        self.bias_vals = np.fromiter(logit_bias.values(), dtype=np.float32, count=len(logit_bias))
        self.presence = presence_penalty
        self.frequency = frequency_penalty
        self.counts: dict[int, int] = {}

    @property
    def greedy(self) -> bool:
        return self.temperature == 0.0

    def modifies_logits(self) -> bool:
        """Whether bias or penalties change the logits before temperature."""
        return bool(self.bias_ids.size) or (
            bool(self.counts) and (self.presence != 0.0 or self.frequency != 0.0)
        )

    def process(self, logits: np.ndarray, allowed: np.ndarray | None) -> np.ndarray:
        """Processed logits (a new float32 array; ``-inf`` where a token cannot be sampled)."""
        x = np.array(logits, dtype=np.float32, copy=True)
        v = x.shape[0]
        if self.bias_ids.size:
            ok = self.bias_ids < v
            np.add.at(x, self.bias_ids[ok], self.bias_vals[ok])
        if self.counts and (self.presence or self.frequency):
            ids = np.fromiter(self.counts.keys(), dtype=np.int64)
            cnt = np.fromiter(self.counts.values(), dtype=np.float32)
            x[ids] -= self.frequency * cnt + self.presence
        if allowed is not None:
            x[~allowed[:v]] = -np.inf
        if self.greedy:
            return x
        x /= self.temperature
        mx = float(x.max())
        if self.top_k and self.top_k < v:
            kth = np.partition(x, v - self.top_k)[v - self.top_k]
            x[x < kth] = -np.inf
        if self.top_p < 1.0:
            cand = np.flatnonzero(x > mx - _TOP_P_EPS_LOGIT)
            p = np.exp(x[cand] - mx)
            p /= np.exp(x - mx).sum()
            order = np.argsort(-p, kind="stable")
            cum = np.cumsum(p[order])
            cut = int(np.searchsorted(cum, self.top_p)) + 1
            if cut < cand.size or cum[-1] >= self.top_p:
                keep = np.zeros(v, dtype=bool)
                keep[cand[order[:cut]]] = True
                x[~keep] = -np.inf
        if self.min_p > 0.0:
            x[x < mx + np.log(self.min_p)] = -np.inf
        return x

    def choose(self, processed: np.ndarray) -> int:
        """Pick a token from processed logits (argmax when greedy)."""
        if self.greedy:
            return int(processed.argmax())
        mx = processed.max()
        p = np.exp(processed - mx, dtype=np.float64)
        c = np.cumsum(p)
        r = self.rng.random() * c[-1]
        return int(min(np.searchsorted(c, r, side="right"), c.shape[0] - 1))

    def observe(self, token_id: int) -> None:
        if self.presence or self.frequency:
            self.counts[token_id] = self.counts.get(token_id, 0) + 1

    def is_identity(self, allowed: np.ndarray | None) -> bool:
        """True when processing would not change raw logits (plain greedy)."""
        return self.greedy and allowed is None and not self.modifies_logits()
