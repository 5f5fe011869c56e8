"""Compare two models (or two versions of one) token by token on the same texts.

Both models score each text. Their tokenizations may differ, so tokens are aligned on byte
offsets: a *segment* runs between two offsets where both models have a token boundary. With the
same tokenizer every segment is one token; otherwise a segment groups the tokens of each model
that cover the same bytes, and its logprob under each model is the sum over its tokens. A
regression is a segment whose logprob drops by more than ``threshold`` nats from A to B.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..errors import InvalidRequestError
from ..types import ScoredText, TokenLogprob
from .scoring import finite

if TYPE_CHECKING:
    from ..engines.base import Engine


@dataclass(frozen=True, slots=True)
class Segment:
    """Bytes ``[start, end)`` of a text with their logprob under model A and model B."""

    start: int
    end: int
    text: str
    logprob_a: float
    logprob_b: float

    @property
    def delta(self) -> float:
        return self.logprob_b - self.logprob_a

    def to_dict(self) -> dict[str, Any]:
        return {
            "start": self.start,
            "end": self.end,
            "text": self.text,
            "logprob_a": finite(self.logprob_a),
            "logprob_b": finite(self.logprob_b),
            "delta": finite(self.delta),
        }


@dataclass(frozen=True, slots=True)
class TextComparison:
    index: int
    n_bytes: int
    logprob_a: float
    logprob_b: float
    segments: tuple[Segment, ...]
    same_tokenization: bool

    @property
    def bits_per_byte_a(self) -> float:
        return -self.logprob_a / math.log(2) / max(1, self.n_bytes)

    @property
    def bits_per_byte_b(self) -> float:
        return -self.logprob_b / math.log(2) / max(1, self.n_bytes)

    def regressions(self, threshold: float) -> list[Segment]:
        return sorted((s for s in self.segments if s.delta < -threshold), key=lambda s: s.delta)


@dataclass(frozen=True, slots=True)
class CompareReport:
    model_a: str
    model_b: str
    texts: tuple[TextComparison, ...]
    threshold: float

    @property
    def n_segments(self) -> int:
        return sum(len(t.segments) for t in self.texts)

    def regressions(self) -> list[tuple[int, Segment]]:
        out = [(t.index, s) for t in self.texts for s in t.regressions(self.threshold)]
        return sorted(out, key=lambda p: p[1].delta)

    def improvements(self) -> list[tuple[int, Segment]]:
        return [(t.index, s) for t in self.texts for s in t.segments if s.delta > self.threshold]

    def to_dict(self, *, top: int = 20) -> dict[str, Any]:
        n_bytes = sum(t.n_bytes for t in self.texts) or 1
        lp_a = sum(t.logprob_a for t in self.texts)
        lp_b = sum(t.logprob_b for t in self.texts)
        deltas = [s.delta for t in self.texts for s in t.segments]
        regs = self.regressions()
        return {
            "model_a": self.model_a,
            "model_b": self.model_b,
            "texts": len(self.texts),
            "segments": self.n_segments,
            "same_tokenization": all(t.same_tokenization for t in self.texts),
            "logprob_a": finite(lp_a),
            "logprob_b": finite(lp_b),
            "bits_per_byte_a": -lp_a / math.log(2) / n_bytes,
            "bits_per_byte_b": -lp_b / math.log(2) / n_bytes,
            "mean_delta": sum(deltas) / len(deltas) if deltas else 0.0,
            "threshold": self.threshold,
            "regressions": len(regs),
            "improvements": len(self.improvements()),
            "worst": [{"text_index": i, **s.to_dict()} for i, s in regs[:top]],
        }


def _ends(tokens: Sequence[TokenLogprob]) -> list[int]:
    ends, pos = [], 0
    for t in tokens:
        pos += len(t.bytes if t.bytes is not None else t.token.encode("utf-8"))
        ends.append(pos)
    return ends


def align(a: ScoredText, b: ScoredText, text: str) -> tuple[list[Segment], bool]:
    """Segments of ``text`` between common token boundaries of the two scorings.

    Segments holding a token without a logprob (the first token, which has no context) in either
    scoring are left out. Returns the segments and whether the tokenizations were identical.
    """
    raw = text.encode("utf-8")
    ea, eb = _ends(a.tokens), _ends(b.tokens)
    if (ea and ea[-1] != len(raw)) or (eb and eb[-1] != len(raw)):
        raise InvalidRequestError("the scored tokens do not spell the text", param="text")
    common = sorted(set(ea) & set(eb))
    same = ea == eb
    segs: list[Segment] = []
    ia = ib = 0
    start = 0
    for end in common:
        lp_a, ok_a, ia = _sum_until(a.tokens, ea, ia, end)
        lp_b, ok_b, ib = _sum_until(b.tokens, eb, ib, end)
        if ok_a and ok_b:
            segs.append(Segment(start, end, raw[start:end].decode("utf-8", "replace"), lp_a, lp_b))
        start = end
    return segs, same


def _sum_until(
    tokens: Sequence[TokenLogprob], ends: list[int], i: int, end: int
) -> tuple[float, bool, int]:
    total, ok = 0.0, True
    while i < len(tokens) and ends[i] <= end:
        lp = tokens[i].logprob
        if lp is None:
            ok = False
        else:
            total += lp
        i += 1
    return total, ok, i


def compare_texts(
    engine_a: Engine,
    engine_b: Engine,
    texts: Sequence[str],
    *,
    threshold: float = 1.0,
    on_text: Callable[[int], None] | None = None,
) -> CompareReport:
    """Score ``texts`` under both engines and align their per-token logprobs."""
    if not texts:
        raise InvalidRequestError("Invalid 'texts': nothing to compare.", param="texts")
    if not math.isfinite(threshold) or threshold < 0:
        raise InvalidRequestError(
            f"Invalid 'threshold': must be >= 0, got {threshold}.", param="threshold"
        )
    out = []
    for i, text in enumerate(texts):
        if not isinstance(text, str) or not text.strip():
            raise InvalidRequestError(f"Invalid 'texts': text {i} is empty.", param="texts")
        sa, sb = engine_a.score(text), engine_b.score(text)
        segs, same = align(sa, sb, text)
        out.append(
            TextComparison(
                i,
                len(text.encode("utf-8")),
                sum(s.logprob_a for s in segs),
                sum(s.logprob_b for s in segs),
                tuple(segs),
                same,
            )
        )
        if on_text:
            on_text(i)
    name_a, name_b = engine_a.model_name or "a", engine_b.model_name or "b"
    return CompareReport(name_a, name_b, tuple(out), threshold)


__all__ = ["CompareReport", "Segment", "TextComparison", "align", "compare_texts"]
