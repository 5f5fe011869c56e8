"""Assembling the neutral :class:`~logprobe.types.Completion` and refusing empty results.

A payload whose text has no token logprobs raises :class:`NoLogprobsError` with the request
option that would have produced them; a payload with no choices at all raises
:class:`NormalizeError`. Neither ever becomes a silently empty completion.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..errors import NoLogprobsError
from ..types import Choice, Completion, FinishReason, LogprobMode, TokenLogprob, Usage
from ._common import Ctx, as_obj, at, fail, get_int, get_str

HOW_TO_REQUEST: dict[str, str] = {
    "openai_chat": 'send "logprobs": true (and "top_logprobs": N for alternatives; '
    "llama-cpp-python's server returns none unless top_logprobs >= 1)",
    "openai_completions": 'send "logprobs": N (an integer; add "echo": true for prompt tokens)',
    "openai_responses": 'send "include": ["message.output_text.logprobs"] (and "top_logprobs": N)',
    "vllm": 'send "logprobs": true / N (and "prompt_logprobs": N for the prompt)',
    "llamacpp": 'send "n_probs": N to /completion',
    "tgi": 'send "parameters": {"details": true, "top_n_tokens": N, "decoder_input_details": true}',
    "ollama": 'send "logprobs": true and "top_logprobs": N (Ollama 0.12.11 or later)',
    "together": 'send "logprobs": N (add "echo": true for prompt tokens)',
    "gemini": 'send "generationConfig": {"responseLogprobs": true, "logprobs": N}',
    "logprobe": "generate with logprobs enabled",
}

OPENAI_FINISH: dict[str, FinishReason] = {
    "stop": "stop",
    "length": "length",
    "content_filter": "content_filter",
    "tool_calls": "tool_calls",
    "function_call": "tool_calls",
    "eos": "stop",
    "eos_token": "stop",
    "stop_sequence": "stop",
    "abort": None,
}


def map_finish(
    value: Any, path: str, ctx: Ctx, table: Mapping[str, FinishReason] = OPENAI_FINISH
) -> FinishReason:
    """A provider's finish reason in the neutral vocabulary (unknown ones noted, kept as None)."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise fail(path, f"expected a finish reason string, got {value!r}")
    if value in table:
        return table[value]
    ctx.notes.add("finish", path, f"unknown finish reason {value!r} kept as null")
    return None


def no_logprobs(provider: str, path: str, why: str) -> NoLogprobsError:
    how = HOW_TO_REQUEST.get(provider, "request logprobs from the provider")
    return NoLogprobsError(f"{why}; to get them, {how}", path=path or None)


@dataclass
class ChoiceParts:
    """One choice being assembled (streams add to it chunk by chunk)."""

    index: int
    text_parts: list[str] = field(default_factory=list)
    tokens: list[TokenLogprob] = field(default_factory=list)
    prompt_tokens: list[TokenLogprob] | None = None
    finish_reason: FinishReason = None
    logprobs_path: str = ""
    saw_logprobs: bool = False
    """Some logprobs field for this choice was present (even if it held zero tokens)."""
    text_without_logprobs: str | None = None
    """Path of the first chunk that carried text but no logprobs (pain point: dropped)."""

    @property
    def text(self) -> str:
        return "".join(self.text_parts)


def assemble(
    parts: Sequence[ChoiceParts],
    ctx: Ctx,
    *,
    model: str = "",
    usage: Usage | None = None,
    mode: LogprobMode = "raw",
    id: str | None = None,
    created: int | None = None,
    choices_path: str = "choices",
) -> Completion:
    """Check every choice really carries logprobs for its text, then build the completion."""
    if not parts:
        raise fail(choices_path, "no choices in the payload (empty result)")
    choices = []
    for p in sorted(parts, key=lambda c: c.index):
        if p.prompt_tokens is None:
            p.prompt_tokens = ctx.prompt_tokens.get(p.index, ctx.prompt_tokens.get(-1))
        _check_choice(p, ctx)
        _check_rebuild(p, ctx)
        choices.append(
            Choice(
                text=p.text,
                tokens=tuple(p.tokens),
                finish_reason=p.finish_reason,
                index=p.index,
                prompt_tokens=None if p.prompt_tokens is None else tuple(p.prompt_tokens),
            )
        )
    if usage is None:
        n_prompt = max((len(c.prompt_tokens or ()) for c in choices), default=0)
        usage = Usage(n_prompt, sum(len(c.tokens) for c in choices))
    return Completion(
        choices=tuple(choices),
        model=model,
        usage=usage,
        provider=ctx.provider,
        logprob_mode=mode,
        id=id,
        created=created,
    )


def _check_choice(p: ChoiceParts, ctx: Ctx) -> None:
    if p.text_without_logprobs is not None and p.saw_logprobs:
        raise fail(
            p.text_without_logprobs,
            "streamed text arrived without logprobs while other chunks carry them "
            "(the server dropped logprobs mid-stream)",
        )
    if p.tokens or p.prompt_tokens or not ctx.require_logprobs:
        return
    if not p.saw_logprobs and (p.text or p.text_without_logprobs is not None):
        raise no_logprobs(ctx.provider, p.logprobs_path, "the response has text but no logprobs")
    if p.text:
        raise no_logprobs(
            ctx.provider,
            p.logprobs_path,
            f"the response has {len(p.text)} characters of text but zero token logprobs",
        )


def _check_rebuild(p: ChoiceParts, ctx: Ctx) -> None:
    """Note when the tokens' exact bytes do not spell the choice's text (tokens missing, extra,
    or from another sequence): the data is kept as given, but the reader should know."""
    if not p.tokens and p.text and p.saw_logprobs:
        ctx.notes.add(
            "rebuild",
            p.logprobs_path,
            f"the choice text ({len(p.text)} characters) has no generated tokens: "
            "the server left them out",
        )
        return
    if not p.tokens or any(t.bytes is None for t in p.tokens):
        return
    got = b"".join(t.bytes or b"" for t in p.tokens)
    want = p.text.encode("utf-8")
    if got != want:
        ctx.notes.add(
            "rebuild",
            p.logprobs_path,
            f"the tokens' bytes ({len(got)} bytes) do not rebuild the choice text "
            f"({len(want)} bytes): tokens are missing or extra",
        )


def read_usage(
    obj: Mapping[str, Any],
    path: str,
    prompt_key: str = "prompt_tokens",
    completion_key: str = "completion_tokens",
) -> Usage | None:
    """``Usage`` from a usage object, or ``None`` when it is absent."""
    u = obj.get("usage")
    if u is None:
        return None
    u = as_obj(u, at(path, "usage"))
    up = at(path, "usage")
    return Usage(get_int(u, prompt_key, up, 0) or 0, get_int(u, completion_key, up, 0) or 0)


@dataclass
class Delta:
    """What one streamed chunk adds to one choice."""

    index: int
    text: str
    tokens: list[TokenLogprob]
    has_logprobs: bool
    finish_reason: FinishReason
    path: str


def add_delta(by_index: dict[int, ChoiceParts], d: Delta) -> None:
    """Fold one chunk's delta into the choice it belongs to."""
    parts = by_index.get(d.index)
    if parts is None:
        parts = by_index[d.index] = ChoiceParts(d.index, logprobs_path=d.path)
    parts.text_parts.append(d.text)
    if d.has_logprobs:
        parts.saw_logprobs = True
        parts.tokens.extend(d.tokens)
    elif d.text and parts.text_without_logprobs is None:
        parts.text_without_logprobs = d.path
    if d.finish_reason is not None:
        parts.finish_reason = d.finish_reason


def check_same_response(
    chunk: Mapping[str, Any], path: str, key: str, seen: dict[str, Any]
) -> None:
    """All chunks of one stream carry the same ``key`` (``id``); a change means mixed streams."""
    value = chunk.get(key)
    if value is None:
        return
    first = seen.setdefault(key, (value, path))
    if first[0] != value:
        raise fail(
            at(path, key),
            f"chunks from different responses in one stream: {value!r} here, "
            f"{first[0]!r} at {first[1] or '$'}",
        )


def parse_chunk_stream(
    chunks: Sequence[Any],
    ctx: Ctx,
    deltas: Callable[[Any, str, Ctx], list[Delta]],
    finish_choice: Callable[[ChoiceParts, Usage | None], None] | None = None,
) -> Completion:
    """A Completion from the chunks of an OpenAI-style stream (chat, completions, Together).

    ``deltas`` reads one chunk's per-choice deltas; ``finish_choice`` fixes up each choice once
    all chunks are in (given the stream's usage). Every chunk must carry the same ``id``."""
    if not chunks:
        raise fail("", "an empty stream: no chunks")
    by_index: dict[int, ChoiceParts] = {}
    seen: dict[str, Any] = {}
    model, usage, created = "", None, None
    for n, chunk in enumerate(chunks):
        path = at("", n)
        for d in deltas(chunk, path, ctx):
            add_delta(by_index, d)
        ch = as_obj(chunk, path)
        check_same_response(ch, path, "id", seen)
        model = get_str(ch, "model", path, model) or model
        created = get_int(ch, "created", path, created)
        usage = read_usage(ch, path) or usage
    if finish_choice is not None:
        for p in by_index.values():
            finish_choice(p, usage)
    first_id = seen.get("id")
    return assemble(
        list(by_index.values()),
        ctx,
        model=model,
        usage=usage,
        id=None if first_id is None else first_id[0],
        created=created,
        choices_path="[*].choices",
    )
