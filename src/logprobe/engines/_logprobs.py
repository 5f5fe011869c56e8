"""Vectorised logprob bookkeeping over rows of logits: the only work logprobe adds to a decode step.

For ``m`` rows of ``V`` logits (float32) and the chosen token of each row, one call computes the
chosen token's logprob, its 1-based rank, the exact entropy of the full distribution and the top-k
alternatives. Cost is a few linear passes over each row (argmax, exp, sum, dot, compare); top-k
sorts only the tokens within a few nats of the best one instead of the whole vocabulary.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..types import LOGPROB_FLOOR

_TOPK_WINDOWS = (8.0, 16.0, 32.0, 64.0)
"""Logit distances below the row maximum searched for top-k candidates, widest last."""


@dataclass(frozen=True, slots=True)
class RowStats:
    """Per-row results, shapes in comments (m rows, k alternatives)."""

    chosen_logprob: np.ndarray  # (m,) float64, clamped to LOGPROB_FLOOR
    rank: np.ndarray  # (m,) int64, 1 = most likely
    entropy: np.ndarray  # (m,) float64, nats, over the full distribution
    top_ids: list[np.ndarray]  # m arrays of <= k token ids, most likely first
    top_logprobs: list[np.ndarray]  # m arrays of matching logprobs
    argmax: np.ndarray  # (m,) int64


def row_stats(
    logits: np.ndarray, chosen: np.ndarray | None, k: int, *, masked: bool = False
) -> RowStats:
    """Logprob statistics of each row of ``logits`` (m, V) for the ``chosen`` ids (m,).

    ``chosen=None`` means "the argmax of each row" (greedy), as does a ``-1`` entry. Rows that
    may contain ``-inf`` (tokens masked by sampling or a constraint) need ``masked=True``; such
    tokens get logprob ``LOGPROB_FLOOR`` and are never listed as alternatives.
    """
    x = np.asarray(logits, dtype=np.float32)
    if x.ndim == 1:
        x = x[None, :]
    m = x.shape[0]
    rows = np.arange(m)
    amax = x.argmax(axis=1)  # (m,)
    z = x - x[rows, amax][:, None]  # (m, V) <= 0, max 0
    e = np.exp(z)  # (m, V): the one transcendental pass
    s = e.sum(axis=1).astype(np.float64)  # (m,) pairwise float32 sum
    lse = np.log(s)  # (m,)
    zf = np.where(np.isfinite(z), z, 0.0) if masked else z
    pz = _vecdot(e, zf).astype(np.float64)  # (m,) sum e*z
    entropy = np.maximum(lse - pz / s, 0.0)  # H = lse - E_p[z]
    if chosen is None:
        ch = amax
        rank = np.ones(m, dtype=np.int64)
    else:
        ch = np.asarray(chosen, dtype=np.int64)
        ch = np.where(ch < 0, amax, ch)
        zc = z[rows, ch]  # (m,)
        rank = np.ones(m, dtype=np.int64)
        for j in np.flatnonzero(ch != amax):
            rank[j] = int(np.count_nonzero(z[j] > zc[j])) + 1
    chosen_lp = np.maximum(z[rows, ch].astype(np.float64) - lse, LOGPROB_FLOOR)
    top_ids: list[np.ndarray] = []
    top_lps: list[np.ndarray] = []
    if k > 0:
        for i in range(m):
            ids = _top_k_row(z[i], k)
            top_ids.append(ids)
            top_lps.append(z[i, ids].astype(np.float64) - lse[i])
    return RowStats(chosen_lp, rank, entropy, top_ids, top_lps, amax.astype(np.int64))


def _vecdot(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise dot products (numpy >= 2 has a SIMD ufunc for it)."""
    if hasattr(np, "vecdot"):
        return np.vecdot(a, b)
    return np.einsum("ij,ij->i", a, b)  # pragma: no cover - numpy 1.x


def _top_k_row(z: np.ndarray, k: int) -> np.ndarray:
    """Ids of the k largest entries of one row ``z`` (max 0), finite only, ties by lower id."""
    k = min(k, z.shape[0])
    cand = None
    for w in _TOPK_WINDOWS:
        c = np.flatnonzero(z > -w)
        if c.size >= k:
            cand = c
            break
    if cand is None:
        cand = np.flatnonzero(np.isfinite(z))
    vals = z[cand]
    if cand.size > k:
        part = np.argpartition(-vals, k - 1)[:k]
        kth = vals[part].min()
        # keep every candidate tied with the k-th value so the id tie-break is exact
        part = np.flatnonzero(vals >= kth)
        cand, vals = cand[part], vals[part]
    order = np.lexsort((cand, -vals))[:k]
    return cand[order]


def log_softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise log-softmax in float32 (masked ``-inf`` entries stay ``-inf``)."""
    x = np.asarray(logits, dtype=np.float32)
    mx = x.max(axis=-1, keepdims=True)
    z = x - mx
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))
