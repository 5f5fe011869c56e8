"""Any provider's response in, one neutral :class:`~logprobe.types.Completion` out.

    normalize(payload, provider=None) -> Completion
        payload: a dict, a list of streamed chunks/events, or their text (JSON, JSON Lines, SSE)
        provider: a shape name from PROVIDERS (or an alias); None detects it from the keys

One module per provider shape reads it; :mod:`.detect` tells them apart. Every error is a
:class:`~logprobe.errors.NormalizeError` naming the JSON path of the offending field, and a
payload without logprobs raises :class:`~logprobe.errors.NoLogprobsError` saying how to ask for
them. Quirks met on the way (lost bytes, clamped values, dropped inconsistent alternatives) are
reported by :func:`normalize_with_notes`. See docs/NORMALIZE.md.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from ..errors import NormalizeError
from ..types import Completion
from . import (
    anthropic,
    gemini,
    llamacpp,
    neutral,
    ollama,
    openai_chat,
    openai_completions,
    openai_responses,
    tgi,
    together,
    vllm,
)
from ._common import Ctx
from .detect import PROVIDERS, detect_provider, openai_base, resolve_name
from .text import SSEEvent, iter_sse, load_payload

_PARSERS: dict[str, Callable[[Any, Ctx], Completion]] = {
    "anthropic": anthropic.parse,
    "gemini": gemini.parse,
    "llamacpp": llamacpp.parse,
    "logprobe": neutral.parse,
    "ollama": ollama.parse,
    "openai_chat": openai_chat.parse,
    "openai_completions": openai_completions.parse,
    "openai_responses": openai_responses.parse,
    "tgi": tgi.parse,
    "together": together.parse,
    "vllm": lambda payload, ctx: vllm.parse(payload, ctx, base=openai_base(payload)),
}


@dataclass(frozen=True, slots=True)
class Normalized:
    """A normalized completion with the notes on quirks met while reading it."""

    completion: Completion
    provider: str
    notes: tuple[str, ...] = ()


def normalize_with_notes(
    payload: Any, provider: str | None = None, *, require_logprobs: bool = True
) -> Normalized:
    """Like :func:`normalize`, also returning one note per kind of quirk handled.

    ``require_logprobs=False`` accepts a payload without logprobs (choices get no tokens)
    instead of raising :class:`~logprobe.errors.NoLogprobsError`.
    """
    if isinstance(payload, str | bytes | bytearray):
        payload = load_payload(payload)
    name = resolve_name(provider) if provider is not None else None
    if name is None:
        name = detect_provider(payload)
        if provider is not None and not name.startswith("openai") and name != "vllm":
            raise NormalizeError(
                f"provider 'openai' given, but the payload looks like {name}", path="provider"
            )
    ctx = Ctx(provider=name, require_logprobs=require_logprobs)
    completion = _PARSERS[name](payload, ctx)
    if completion.provider != name and name != "logprobe":
        completion = replace(completion, provider=name)
    return Normalized(completion, name, ctx.notes.lines())


def normalize(payload: Any, provider: str | None = None) -> Completion:
    """Turn a provider's response (or stream of chunks) into a neutral :class:`Completion`."""
    return normalize_with_notes(payload, provider).completion


__all__ = [
    "PROVIDERS",
    "Normalized",
    "SSEEvent",
    "detect_provider",
    "iter_sse",
    "load_payload",
    "normalize",
    "normalize_with_notes",
]
