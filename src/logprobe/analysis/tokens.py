"""Per-token confidence: probability, rank, margin to the best alternative, entropy.

Entropy is exact when the engine reports it (:attr:`TokenLogprob.entropy`; the embedded engine
does). Otherwise it is bounded from the chosen token and its top-k alternatives
(:func:`entropy_bounds`): the listed tokens contribute their exact terms, and the leftover
probability mass ``R = 1 - (listed mass)`` is bounded, not guessed:

* lower bound: ``R`` packed into as few tokens as possible, each no likelier than the least likely
  listed alternative (a top-k list guarantees every unlisted token is at most that likely);
* upper bound (only when the vocabulary size ``V`` is known): ``R`` spread evenly over the
  ``V - k`` unlisted tokens, never above ``log V``.

Logprob cleaning (see docs/ANALYSIS.md): ``None`` = unscored, NaN = invalid (both left out of
statistics), values at or below ``-9999`` (and ``-inf``) = floored (kept at ``-9999``, probability
0), tiny positive rounding (up to ``1e-3``) clamps to 0, larger positive values are invalid.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from scipy.special import entr

from ..types import LOGPROB_FLOOR, Alternative, TokenLogprob

Status = Literal["ok", "unscored", "invalid", "floored"]
POSITIVE_TOLERANCE = 1e-3
"""Positive logprobs up to this are float rounding and clamp to 0; larger ones are invalid."""


def clean_logprob(value: float | None) -> tuple[float | None, Status]:
    """Cleaned logprob and its status (see module docstring)."""
    if value is None:
        return None, "unscored"
    v = float(value)
    if math.isnan(v) or v > POSITIVE_TOLERANCE:
        return None, "invalid"
    if v <= LOGPROB_FLOOR:
        return LOGPROB_FLOOR, "floored"
    return min(v, 0.0), "ok"


def _key(token_id: int | None, raw: bytes | None, text: str) -> tuple[str, Any]:
    if token_id is not None:
        return ("id", token_id)
    return ("bytes", raw) if raw is not None else ("text", text)


def same_token(t: TokenLogprob, a: Alternative) -> bool:
    """Whether alternative ``a`` is the chosen token ``t`` (by id, else bytes, else text)."""
    if t.id is not None and a.id is not None:
        return t.id == a.id
    if t.bytes is not None and a.bytes is not None:
        return t.bytes == a.bytes
    return t.token == a.token


def clean_alternatives(alts: Sequence[Alternative]) -> list[Alternative]:
    """Alternatives with a usable logprob (NaN dropped, floor applied), duplicates merged."""
    seen: dict[tuple[str, Any], Alternative] = {}
    for a in alts:
        lp, status = clean_logprob(a.logprob)
        if lp is None:
            continue
        key = _key(a.id, a.bytes, a.token)
        if key not in seen or lp > seen[key].logprob:
            seen[key] = Alternative(a.token, a.bytes, lp, a.id)
    return sorted(seen.values(), key=lambda a: -a.logprob)


def _min_packed_entropy(mass: float, cap: float) -> float:
    """Least entropy mass ``mass`` can carry when no token may exceed probability ``cap``."""
    if mass <= 0.0:
        return 0.0
    if cap <= 0.0:  # listed tokens all floored: nothing limits the leftover
        cap = mass
    full = math.floor(mass / cap)
    rest = max(0.0, mass - full * cap)  # rounding can make it -1e-17
    return float(full * entr(cap) + entr(rest))


@dataclass(frozen=True, slots=True)
class EntropyBounds:
    """Bounds on a position's entropy (nats) from the listed tokens; ``upper`` needs ``V``."""

    lower: float
    upper: float | None
    listed_mass: float  # probability covered by the chosen token and its alternatives


def entropy_bounds(
    listed_logprobs: Sequence[float], cap_logprob: float | None, vocab_size: int | None = None
) -> EntropyBounds:
    """Bound the entropy of a distribution of which only some tokens' logprobs are known.

    ``listed_logprobs``: distinct tokens' logprobs (chosen + alternatives). ``cap_logprob``: the
    most any unlisted token can have (the least likely top-k alternative), ``None`` if unknown.
    """
    p = np.exp(np.asarray(listed_logprobs, dtype=np.float64))  # (k,)
    listed = float(p.sum())
    leftover = max(0.0, 1.0 - listed)
    known = float(entr(p).sum())
    cap = leftover if cap_logprob is None else math.exp(cap_logprob)
    lower = known + _min_packed_entropy(leftover, cap)
    upper: float | None = None
    if vocab_size is not None and vocab_size > 0:
        log_v = math.log(vocab_size)
        unlisted = vocab_size - len(p)
        spread = 0.0
        if leftover > 0.0 and unlisted > 0:
            spread = float(entr(leftover)) + leftover * math.log(unlisted)
        upper = min(known + spread, log_v)
        lower = min(lower, upper)
    return EntropyBounds(lower=lower, upper=upper, listed_mass=min(listed, 1.0))


@dataclass(frozen=True, slots=True)
class TokenStats:
    """Confidence numbers for one token. ``entropy`` is exact when ``entropy_exact`` is true,
    else a lower bound (``entropy_upper`` is the matching upper bound when ``V`` was given)."""

    index: int
    logprob: float | None
    prob: float | None
    status: Status
    rank: int | None
    margin: float | None  # logprob(chosen) - logprob(best other listed token), nats
    entropy: float | None
    entropy_exact: bool
    entropy_upper: float | None
    listed_mass: float | None

    def to_dict(self) -> dict[str, Any]:
        from .._json import json_safe

        return json_safe(
            {
                "index": self.index,
                "logprob": self.logprob,
                "prob": self.prob,
                "status": self.status,
                "rank": self.rank,
                "margin": self.margin,
                "entropy": self.entropy,
                "entropy_exact": self.entropy_exact,
                "entropy_upper": self.entropy_upper,
                "listed_mass": self.listed_mass,
            }
        )


def _rank(
    t: TokenLogprob, lp: float | None, alts: list[Alternative], chosen_listed: bool
) -> int | None:
    if t.rank is not None and t.rank >= 1:
        return int(t.rank)
    if lp is None or not alts or not chosen_listed:
        return None  # not among the alternatives: rank > k, unknown
    return 1 + sum(1 for a in alts if not same_token(t, a) and a.logprob > lp)


def _exact_entropy(t: TokenLogprob) -> float | None:
    if t.entropy is None:
        return None
    h = float(t.entropy)
    if not math.isfinite(h):
        return None
    return max(h, 0.0)


def token_stats(t: TokenLogprob, index: int = 0, *, vocab_size: int | None = None) -> TokenStats:
    """All per-token numbers for ``t`` (see :class:`TokenStats`)."""
    lp, status = clean_logprob(t.logprob)
    alts = clean_alternatives(t.top_logprobs)
    chosen_listed = any(same_token(t, a) for a in alts)
    others = [a.logprob for a in alts if not same_token(t, a)]
    margin = None if lp is None or not others else lp - max(others)
    exact = _exact_entropy(t)
    entropy, upper, mass = exact, exact, None
    if lp is not None or alts:
        listed = [a.logprob for a in alts]
        if lp is not None and not chosen_listed:
            listed.append(lp)
        cap = alts[-1].logprob if alts else None
        bounds = entropy_bounds(listed, cap, vocab_size)
        mass = bounds.listed_mass
        if exact is None:
            entropy, upper = bounds.lower, bounds.upper
    return TokenStats(
        index=index,
        logprob=lp,
        prob=None if lp is None else math.exp(lp),
        status=status,
        rank=_rank(t, lp, alts, chosen_listed),
        margin=margin,
        entropy=entropy,
        entropy_exact=exact is not None,
        entropy_upper=upper,
        listed_mass=mass,
    )


def all_token_stats(
    tokens: Sequence[TokenLogprob], *, vocab_size: int | None = None
) -> list[TokenStats]:
    """:func:`token_stats` for every token, in order."""
    return [token_stats(t, i, vocab_size=vocab_size) for i, t in enumerate(tokens)]
