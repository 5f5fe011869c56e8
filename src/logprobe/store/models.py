"""What the store hands back: frozen records of runs and responses."""

from __future__ import annotations

import datetime as _dt
import math
from dataclasses import dataclass, field
from typing import Any

from ..errors import StoreError
from ..types import Choice, Completion, TokenLogprob, Usage


class RunNotFoundError(StoreError):
    """A run name (or response id) that the store does not hold."""

    status_code = 404
    error_type = "invalid_request_error"


def iso(ts: float) -> str:
    return _dt.datetime.fromtimestamp(ts, _dt.UTC).isoformat(timespec="seconds")


@dataclass(frozen=True, slots=True)
class Run:
    """A named run: one model + prompt template + parameters, holding many responses."""

    id: int
    name: str
    model: str
    model_version: str
    prompt_template: str | None
    params: dict[str, Any]
    tags: tuple[str, ...]
    created_at: float
    n_responses: int = 0
    mean_logprob: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "model": self.model,
            "model_version": self.model_version,
            "prompt_template": self.prompt_template,
            "params": self.params,
            "tags": list(self.tags),
            "created_at": iso(self.created_at),
            "n_responses": self.n_responses,
            "mean_logprob": self.mean_logprob,
        }


@dataclass(frozen=True, slots=True)
class Recorded:
    """Ids written by :meth:`Store.record`: the request and one response per choice."""

    request_id: int
    response_ids: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class StoredResponse:
    """A stored response (one choice) with its request and derived metrics.

    ``tokens``/``prompt_tokens`` are filled only when asked for (they can be large).
    """

    id: int
    run: str
    request_id: int
    prompt: str
    messages: list[dict[str, Any]] | None
    params: dict[str, Any]
    meta: dict[str, Any]
    choice_index: int
    text: str
    finish_reason: str | None
    model: str
    provider: str
    logprob_mode: str
    completion_id: str | None
    usage: Usage
    n_tokens: int
    n_scored: int
    sum_logprob: float | None
    mean_logprob: float | None
    min_logprob: float | None
    perplexity: float | None
    mean_entropy: float | None
    n_low_confidence: int
    correct: bool | None
    latency_ms: float | None
    created_at: float
    has_prompt_tokens: bool = False
    tokens: tuple[TokenLogprob, ...] | None = None
    prompt_tokens: tuple[TokenLogprob, ...] | None = field(default=None)

    @property
    def confidence(self) -> float | None:
        """Geometric-mean token probability ``exp(mean_logprob)``."""
        return None if self.mean_logprob is None else math.exp(self.mean_logprob)

    def to_completion(self) -> Completion:
        """The stored choice as a one-choice :class:`Completion` (needs ``tokens`` loaded)."""
        if self.tokens is None:
            raise StoreError(f"response {self.id} was loaded without its tokens")
        choice = Choice(
            text=self.text,
            tokens=self.tokens,
            finish_reason=self.finish_reason,  # type: ignore[arg-type]
            index=self.choice_index,
            prompt_tokens=self.prompt_tokens,
        )
        return Completion(
            choices=(choice,),
            model=self.model,
            usage=self.usage,
            provider=self.provider,
            logprob_mode=self.logprob_mode,  # type: ignore[arg-type]
            id=self.completion_id,
        )

    def to_dict(self, *, with_tokens: bool = False) -> dict[str, Any]:
        d: dict[str, Any] = {
            "id": self.id,
            "run": self.run,
            "request_id": self.request_id,
            "prompt": self.prompt,
            "messages": self.messages,
            "params": self.params,
            "meta": self.meta,
            "choice_index": self.choice_index,
            "text": self.text,
            "finish_reason": self.finish_reason,
            "model": self.model,
            "provider": self.provider,
            "logprob_mode": self.logprob_mode,
            "completion_id": self.completion_id,
            "usage": self.usage.to_dict(),
            "n_tokens": self.n_tokens,
            "n_scored": self.n_scored,
            "sum_logprob": self.sum_logprob,
            "mean_logprob": self.mean_logprob,
            "min_logprob": self.min_logprob,
            "perplexity": self.perplexity,
            "mean_entropy": self.mean_entropy,
            "n_low_confidence": self.n_low_confidence,
            "confidence": self.confidence,
            "correct": self.correct,
            "latency_ms": self.latency_ms,
            "created_at": iso(self.created_at),
            "has_prompt_tokens": self.has_prompt_tokens,
        }
        if with_tokens:
            d["tokens"] = None if self.tokens is None else [t.to_dict() for t in self.tokens]
            d["prompt_tokens"] = (
                None if self.prompt_tokens is None else [t.to_dict() for t in self.prompt_tokens]
            )
        return d
