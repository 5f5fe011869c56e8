"""Provider-neutral core types: every engine produces them, every other layer reads only them.

    Completion ── choices: tuple[Choice, ...] ── tokens: tuple[TokenLogprob, ...]
                                              └─ prompt_tokens: tuple[TokenLogprob, ...] | None
                                                     └── top_logprobs: tuple[Alternative, ...]

Conventions (written once, relied on everywhere):

* ``logprob`` is a natural-log probability, always finite. Values below :data:`LOGPROB_FLOOR`
  (``-9999.0``, OpenAI's documented sentinel) are clamped to it; ``-inf``/NaN never appear.
  ``None`` means "no logprob exists", e.g. the first prompt token, which has no context.
* ``bytes`` are the exact bytes of the token. A token holding half of a UTF-8 character carries
  just those bytes; the text of a sequence is rebuilt by concatenating bytes, then decoding.
  ``token`` is a display string (invalid UTF-8 shown as U+FFFD); never rebuild text from it.
* ``rank`` is 1-based: 1 means the chosen token was the most likely one.
* ``entropy`` (nats) is the exact entropy of the full distribution the logprob was taken from,
  when the engine knows it (the embedded engine does); ``None`` otherwise (analysis then offers
  a bound from the alternatives).
* ``logprob_mode`` says which distribution the numbers come from: ``"raw"`` (the model's
  distribution before temperature, top-k/top-p, penalties and logit bias; the default) or
  ``"processed"`` (the distribution actually sampled from).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

LOGPROB_FLOOR = -9999.0
"""Smallest logprob ever reported; stands for "impossible or not computed" (as OpenAI does)."""

LogprobMode = Literal["raw", "processed"]
FinishReason = Literal["stop", "length", "content_filter", "tool_calls"] | None


def clamp_logprob(value: float | None) -> float | None:
    """Map ``-inf``/NaN/very small values onto :data:`LOGPROB_FLOOR`; keep ``None`` as ``None``."""
    if value is None:
        return None
    v = float(value)
    if math.isnan(v) or v < LOGPROB_FLOOR:
        return LOGPROB_FLOOR
    return min(v, 0.0)


def display_token(raw: bytes | None, fallback: str = "") -> str:
    """A printable string for token bytes; invalid UTF-8 parts become U+FFFD."""
    if raw is None:
        return fallback
    return raw.decode("utf-8", errors="replace")


@dataclass(frozen=True, slots=True)
class Alternative:
    """One of the most likely tokens at a position."""

    token: str
    bytes: bytes | None
    logprob: float
    id: int | None = None

    @property
    def prob(self) -> float:
        return math.exp(self.logprob)

    def to_dict(self) -> dict[str, Any]:
        return {
            "token": self.token,
            "bytes": None if self.bytes is None else list(self.bytes),
            "logprob": self.logprob,
            "id": self.id,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Alternative:
        b = d.get("bytes")
        return cls(
            token=d["token"],
            bytes=None if b is None else bytes(b),
            logprob=float(d["logprob"]),
            id=d.get("id"),
        )


@dataclass(frozen=True, slots=True)
class TokenLogprob:
    """A token of a sequence with its logprob, rank, alternatives and (when known) entropy."""

    token: str
    bytes: bytes | None
    logprob: float | None
    id: int | None = None
    rank: int | None = None
    top_logprobs: tuple[Alternative, ...] = ()
    entropy: float | None = None

    @property
    def prob(self) -> float | None:
        return None if self.logprob is None else math.exp(self.logprob)

    def to_dict(self) -> dict[str, Any]:
        return {
            "token": self.token,
            "bytes": None if self.bytes is None else list(self.bytes),
            "logprob": self.logprob,
            "id": self.id,
            "rank": self.rank,
            "entropy": self.entropy,
            "top_logprobs": [a.to_dict() for a in self.top_logprobs],
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> TokenLogprob:
        b = d.get("bytes")
        lp = d.get("logprob")
        return cls(
            token=d["token"],
            bytes=None if b is None else bytes(b),
            logprob=None if lp is None else float(lp),
            id=d.get("id"),
            rank=d.get("rank"),
            top_logprobs=tuple(Alternative.from_dict(a) for a in d.get("top_logprobs") or ()),
            entropy=d.get("entropy"),
        )


def tokens_text(tokens: Iterable[TokenLogprob]) -> str:
    """Rebuild text from tokens' exact bytes (falls back to ``token`` where bytes are unknown)."""
    buf = bytearray()
    for t in tokens:
        buf += t.bytes if t.bytes is not None else t.token.encode("utf-8")
    return buf.decode("utf-8", errors="replace")


@dataclass(frozen=True, slots=True)
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def to_dict(self) -> dict[str, int]:
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.total_tokens,
        }


@dataclass(frozen=True, slots=True)
class Choice:
    """One generated sequence. ``prompt_tokens`` holds prompt logprobs when they were asked for."""

    text: str
    tokens: tuple[TokenLogprob, ...]
    finish_reason: FinishReason = None
    index: int = 0
    prompt_tokens: tuple[TokenLogprob, ...] | None = None

    @property
    def logprobs(self) -> list[float]:
        """Logprobs of the generated tokens (``None`` entries skipped)."""
        return [t.logprob for t in self.tokens if t.logprob is not None]

    @property
    def logprob(self) -> float:
        """Sum of the generated tokens' logprobs: the log-probability of the whole text."""
        return float(sum(self.logprobs))

    @property
    def mean_logprob(self) -> float | None:
        """Mean logprob per generated token; ``None`` when no token carries a logprob."""
        lps = self.logprobs
        return sum(lps) / len(lps) if lps else None

    @property
    def perplexity(self) -> float | None:
        """``exp(-mean_logprob)``; ``None`` when no token carries a logprob."""
        mean = self.mean_logprob
        return None if mean is None else math.exp(-mean)

    def to_dict(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "text": self.text,
            "finish_reason": self.finish_reason,
            "tokens": [t.to_dict() for t in self.tokens],
            "prompt_tokens": None
            if self.prompt_tokens is None
            else [t.to_dict() for t in self.prompt_tokens],
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Choice:
        pt = d.get("prompt_tokens")
        return cls(
            text=d["text"],
            tokens=tuple(TokenLogprob.from_dict(t) for t in d.get("tokens") or ()),
            finish_reason=d.get("finish_reason"),
            index=int(d.get("index", 0)),
            prompt_tokens=None if pt is None else tuple(TokenLogprob.from_dict(t) for t in pt),
        )


@dataclass(frozen=True, slots=True)
class Completion:
    """A provider-neutral completion: what every engine returns and the normalizer produces."""

    choices: tuple[Choice, ...]
    model: str = ""
    usage: Usage = field(default_factory=Usage)
    provider: str = "logprobe"
    logprob_mode: LogprobMode = "raw"
    id: str | None = None
    created: int | None = None

    @property
    def choice(self) -> Choice:
        """The first choice (most responses have exactly one)."""
        if not self.choices:
            raise IndexError("this completion has no choices")
        return self.choices[0]

    @property
    def text(self) -> str:
        """The first choice's text."""
        return self.choice.text

    @property
    def tokens(self) -> tuple[TokenLogprob, ...]:
        """The first choice's generated tokens."""
        return self.choice.tokens

    @property
    def logprob(self) -> float:
        """The first choice's summed logprob (see :attr:`Choice.logprob`)."""
        return self.choice.logprob

    @property
    def mean_logprob(self) -> float | None:
        """The first choice's mean logprob per token (``choices[i].mean_logprob`` for others)."""
        return self.choice.mean_logprob

    @property
    def perplexity(self) -> float | None:
        """The first choice's perplexity (``choices[i].perplexity`` for others)."""
        return self.choice.perplexity

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "created": self.created,
            "model": self.model,
            "provider": self.provider,
            "logprob_mode": self.logprob_mode,
            "usage": self.usage.to_dict(),
            "choices": [c.to_dict() for c in self.choices],
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Completion:
        u = d.get("usage") or {}
        return cls(
            choices=tuple(Choice.from_dict(c) for c in d.get("choices") or ()),
            model=d.get("model", ""),
            usage=Usage(int(u.get("prompt_tokens", 0)), int(u.get("completion_tokens", 0))),
            provider=d.get("provider", "logprobe"),
            logprob_mode=d.get("logprob_mode", "raw"),
            id=d.get("id"),
            created=d.get("created"),
        )


@dataclass(frozen=True, slots=True)
class ScoredText:
    """Teacher-forced logprobs of ``text`` (optionally after a ``prompt``).

    ``tokens`` are the tokens of ``text`` only; the first has ``logprob=None`` when there is no
    prompt (no context to predict it from), as in OpenAI's ``echo``.
    """

    text: str
    tokens: tuple[TokenLogprob, ...]
    prompt: str | None = None
    prompt_token_count: int = 0

    @property
    def logprob(self) -> float:
        """Sum of the (defined) token logprobs."""
        return float(sum(t.logprob for t in self.tokens if t.logprob is not None))

    @property
    def n_scored(self) -> int:
        return sum(1 for t in self.tokens if t.logprob is not None)

    @property
    def perplexity(self) -> float:
        n = self.n_scored
        return math.exp(-self.logprob / n) if n else float("nan")

    def to_dict(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "prompt": self.prompt,
            "prompt_token_count": self.prompt_token_count,
            "logprob": self.logprob,
            "tokens": [t.to_dict() for t in self.tokens],
        }


def with_tokens(choice: Choice, tokens: Sequence[TokenLogprob]) -> Choice:
    """A copy of ``choice`` holding ``tokens`` instead (text unchanged)."""
    return replace(choice, tokens=tuple(tokens))
