"""Comparing two runs: per-prompt and per-token differences in confidence, regressions first.

Responses are aligned by prompt text (the first stored response of each prompt in each run).
Within a prompt, tokens are aligned by their exact bytes with :class:`difflib.SequenceMatcher`
(identical sequences pair position by position), so runs of different models, tokenizers or
outputs still line up where their text agrees. ``delta`` is always *B minus A*: a negative
mean-logprob delta means run B is less confident than run A on that prompt (a regression).
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from ..types import TokenLogprob
from .models import Run, StoredResponse

if TYPE_CHECKING:
    from .store import Store

EPSILON = 1e-9
TokenStatus = Literal["same", "changed", "added", "removed"]


@dataclass(frozen=True, slots=True)
class TokenDelta:
    """One aligned position: the token in A and/or B and their logprobs."""

    status: TokenStatus
    position_a: int | None
    position_b: int | None
    token_a: str | None
    token_b: str | None
    logprob_a: float | None
    logprob_b: float | None

    @property
    def delta(self) -> float | None:
        if self.logprob_a is None or self.logprob_b is None:
            return None
        return self.logprob_b - self.logprob_a

    @property
    def prob_delta(self) -> float | None:
        if self.logprob_a is None or self.logprob_b is None:
            return None
        return math.exp(self.logprob_b) - math.exp(self.logprob_a)

    def to_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "position_a": self.position_a,
            "position_b": self.position_b,
            "token_a": self.token_a,
            "token_b": self.token_b,
            "logprob_a": self.logprob_a,
            "logprob_b": self.logprob_b,
            "delta": self.delta,
            "prob_delta": self.prob_delta,
        }


@dataclass(frozen=True, slots=True)
class PromptDiff:
    """One prompt present in both runs."""

    prompt: str
    a: StoredResponse
    b: StoredResponse
    tokens: tuple[TokenDelta, ...]  # the largest per-token drops first
    n_changed_tokens: int

    @property
    def delta(self) -> float | None:
        """``mean_logprob(B) - mean_logprob(A)``."""
        if self.a.mean_logprob is None or self.b.mean_logprob is None:
            return None
        return self.b.mean_logprob - self.a.mean_logprob

    @property
    def status(self) -> str:
        d = self.delta
        if d is None:
            return "incomparable"
        return "regressed" if d < -EPSILON else "improved" if d > EPSILON else "unchanged"

    def to_dict(self) -> dict[str, Any]:
        return {
            "prompt": self.prompt,
            "status": self.status,
            "delta_mean_logprob": self.delta,
            "response_a": self.a.id,
            "response_b": self.b.id,
            "text_a": self.a.text,
            "text_b": self.b.text,
            "same_text": self.a.text == self.b.text,
            "mean_logprob_a": self.a.mean_logprob,
            "mean_logprob_b": self.b.mean_logprob,
            "min_logprob_a": self.a.min_logprob,
            "min_logprob_b": self.b.min_logprob,
            "perplexity_a": self.a.perplexity,
            "perplexity_b": self.b.perplexity,
            "n_tokens_a": self.a.n_tokens,
            "n_tokens_b": self.b.n_tokens,
            "correct_a": self.a.correct,
            "correct_b": self.b.correct,
            "n_changed_tokens": self.n_changed_tokens,
            "tokens": [t.to_dict() for t in self.tokens],
        }


@dataclass(frozen=True, slots=True)
class Comparison:
    run_a: Run
    run_b: Run
    rows: tuple[PromptDiff, ...]  # regressions first (most negative delta first)
    only_a: tuple[str, ...]
    only_b: tuple[str, ...]

    @property
    def n_regressed(self) -> int:
        return sum(1 for r in self.rows if r.status == "regressed")

    @property
    def n_improved(self) -> int:
        return sum(1 for r in self.rows if r.status == "improved")

    @property
    def mean_delta(self) -> float | None:
        ds = [r.delta for r in self.rows if r.delta is not None]
        return sum(ds) / len(ds) if ds else None

    def summary(self) -> dict[str, Any]:
        return {
            "run_a": self.run_a.name,
            "run_b": self.run_b.name,
            "n_common": len(self.rows),
            "n_regressed": self.n_regressed,
            "n_improved": self.n_improved,
            "mean_delta_mean_logprob": self.mean_delta,
            "only_a": len(self.only_a),
            "only_b": len(self.only_b),
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.summary(),
            "rows": [r.to_dict() for r in self.rows],
            "prompts_only_a": list(self.only_a),
            "prompts_only_b": list(self.only_b),
        }


def _key(t: TokenLogprob) -> bytes:
    return t.bytes if t.bytes is not None else t.token.encode("utf-8", "surrogatepass")


def align_tokens(a: Sequence[TokenLogprob], b: Sequence[TokenLogprob]) -> list[TokenDelta]:
    """Pair the tokens of two responses; equal bytes pair as ``same``."""
    ka, kb = [_key(t) for t in a], [_key(t) for t in b]
    if ka == kb:
        return [_pair("same", i, i, a, b) for i in range(len(a))]
    matcher = difflib.SequenceMatcher(None, ka, kb, autojunk=len(ka) * len(kb) > 4_000_000)
    out: list[TokenDelta] = []
    for op, i1, i2, j1, j2 in matcher.get_opcodes():
        if op == "equal":
            out += [_pair("same", i1 + k, j1 + k, a, b) for k in range(i2 - i1)]
            continue
        n = min(i2 - i1, j2 - j1)
        out += [_pair("changed", i1 + k, j1 + k, a, b) for k in range(n)]
        out += [_pair("removed", i, None, a, b) for i in range(i1 + n, i2)]
        out += [_pair("added", None, j, a, b) for j in range(j1 + n, j2)]
    return out


def _pair(
    status: TokenStatus,
    i: int | None,
    j: int | None,
    a: Sequence[TokenLogprob],
    b: Sequence[TokenLogprob],
) -> TokenDelta:
    ta = None if i is None else a[i]
    tb = None if j is None else b[j]
    return TokenDelta(
        status=status,
        position_a=i,
        position_b=j,
        token_a=None if ta is None else ta.token,
        token_b=None if tb is None else tb.token,
        logprob_a=None if ta is None else ta.logprob,
        logprob_b=None if tb is None else tb.logprob,
    )


def worst_tokens(deltas: Sequence[TokenDelta], limit: int) -> tuple[TokenDelta, ...]:
    """The ``limit`` aligned tokens whose confidence dropped most (B vs A)."""
    scored = [d for d in deltas if d.status == "same" and d.delta is not None]
    scored.sort(key=lambda d: (d.delta, d.position_a))  # type: ignore[arg-type,return-value]
    return tuple(scored[:limit])


def first_by_prompt(responses: Sequence[StoredResponse]) -> dict[str, StoredResponse]:
    out: dict[str, StoredResponse] = {}
    for r in responses:
        out.setdefault(r.prompt, r)
    return out


def compare_runs(
    store: Store, run_a: str | Run, run_b: str | Run, *, token_limit: int = 20
) -> Comparison:
    ra = run_a if isinstance(run_a, Run) else store.run(run_a)
    rb = run_b if isinstance(run_b, Run) else store.run(run_b)
    by_a = first_by_prompt(store.responses(ra))
    by_b = first_by_prompt(store.responses(rb))
    rows = []
    for prompt, resp_a in by_a.items():
        resp_b = by_b.get(prompt)
        if resp_b is None:
            continue
        tokens: tuple[TokenDelta, ...] = ()
        changed = 0
        if token_limit > 0:
            deltas = align_tokens(
                store.tokens(resp_a.id, alternatives=False),
                store.tokens(resp_b.id, alternatives=False),
            )
            tokens = worst_tokens(deltas, token_limit)
            changed = sum(1 for d in deltas if d.status != "same")
        rows.append(PromptDiff(prompt, resp_a, resp_b, tokens, changed))
    rows.sort(key=lambda r: (r.delta is None, r.delta if r.delta is not None else 0.0))
    return Comparison(
        run_a=ra,
        run_b=rb,
        rows=tuple(rows),
        only_a=tuple(p for p in by_a if p not in by_b),
        only_b=tuple(p for p in by_b if p not in by_a),
    )
