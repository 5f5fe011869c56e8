"""Small builders for hand-made token sequences used by the analysis tests."""

from __future__ import annotations

import math
from collections.abc import Sequence

from logprobe.types import Alternative, Choice, Completion, TokenLogprob


def tok(
    text: str | bytes,
    logprob: float | None,
    alts: Sequence[tuple[str, float]] = (),
    *,
    entropy: float | None = None,
    rank: int | None = None,
    token_id: int | None = None,
) -> TokenLogprob:
    """A token from its text (or raw bytes) and logprob; ``alts`` are (text, logprob) pairs."""
    raw = text if isinstance(text, bytes) else text.encode("utf-8")
    shown = raw.decode("utf-8", errors="replace")
    return TokenLogprob(
        token=shown,
        bytes=raw,
        logprob=logprob,
        id=token_id,
        rank=rank,
        top_logprobs=tuple(Alternative(a, a.encode("utf-8"), lp) for a, lp in alts),
        entropy=entropy,
    )


def toks(pairs: Sequence[tuple[str, float]]) -> list[TokenLogprob]:
    return [tok(t, lp) for t, lp in pairs]


def p(prob: float) -> float:
    """logprob of a probability."""
    return math.log(prob)


def completion(tokens: Sequence[TokenLogprob], **kw: object) -> Completion:
    text = b"".join(t.bytes or b"" for t in tokens).decode("utf-8", errors="replace")
    return Completion(choices=(Choice(text=text, tokens=tuple(tokens)),), model="test", **kw)  # type: ignore[arg-type]
