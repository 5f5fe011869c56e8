"""Render core :class:`~logprobe.types.TokenLogprob` values into each OpenAI logprobs shape,
and responses into JSON bodies and server-sent-event frames.

Every number goes through :func:`finite_logprob`, so no ``-inf``/NaN ever reaches JSON (values
below :data:`~logprobe.types.LOGPROB_FLOOR` become ``-9999.0``, as OpenAI documents), and
:func:`dumps` refuses any that slip through. :class:`FrameWriter` builds the frames of every
streaming endpoint: chunk objects (chat, completions) and typed events (responses).
"""

from __future__ import annotations

import codecs
import json
import logging
import uuid
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from starlette.background import BackgroundTask
from starlette.responses import Response

from ..errors import LogprobeError
from ..types import LOGPROB_FLOOR, Alternative, TokenLogprob, clamp_logprob
from .errors import error_body
from .streaming import sse_frame

logger = logging.getLogger("logprobe.server")


def finite_logprob(value: float | None) -> float:
    """A JSON-safe logprob: clamped to ``[-9999.0, 0.0]``; an unknown value becomes the floor."""
    v = clamp_logprob(value)
    return LOGPROB_FLOOR if v is None else v


def byte_list(raw: bytes | None) -> list[int] | None:
    return None if raw is None else list(raw)


# ---------------------------------------------------------------- Chat Completions / Responses


def chat_alternative(alt: Alternative, *, with_bytes: bool = True) -> dict[str, Any]:
    out: dict[str, Any] = {"token": alt.token, "logprob": finite_logprob(alt.logprob)}
    if with_bytes:
        out["bytes"] = byte_list(alt.bytes)
    return out


def chat_entry(tok: TokenLogprob, *, with_bytes: bool = True) -> dict[str, Any]:
    """``{token, logprob, bytes, top_logprobs}`` (Chat Completions and Responses output text)."""
    out: dict[str, Any] = {"token": tok.token, "logprob": finite_logprob(tok.logprob)}
    if with_bytes:
        out["bytes"] = byte_list(tok.bytes)
    out["top_logprobs"] = [chat_alternative(a, with_bytes=with_bytes) for a in tok.top_logprobs]
    return out


def chat_logprobs(tokens: Iterable[TokenLogprob]) -> dict[str, Any]:
    """A choice's ``logprobs`` object: ``{"content": [...], "refusal": None}``."""
    return {"content": [chat_entry(t) for t in tokens], "refusal": None}


class ChatEntryJSON:
    """:func:`chat_entry` as JSON text, fast: the streaming hot path renders one entry with up
    to 20 alternatives per token, so each vocabulary token's ``"token"`` and ``"bytes"``
    fragments are encoded once and cached, and only the numbers are formatted per use. The
    output is exactly ``dumps(chat_entry(tok))`` (a test checks it)."""

    MAX_CACHED = 1 << 18

    def __init__(self) -> None:
        self._parts: dict[tuple[str, bytes | None], tuple[str, str]] = {}

    def _split(self, token: str, raw: bytes | None) -> tuple[str, str]:
        key = (token, raw)
        parts = self._parts.get(key)
        if parts is None:
            if len(self._parts) >= self.MAX_CACHED:
                self._parts.clear()
            head = '{"token":' + dumps(token) + ',"logprob":'
            parts = (head, ',"bytes":' + dumps(byte_list(raw)))
            self._parts[key] = parts
        return parts

    def entry(self, tok: TokenLogprob) -> str:
        head, tail = self._split(tok.token, tok.bytes)
        alts = []
        for a in tok.top_logprobs:
            ah, at = self._split(a.token, a.bytes)
            alts.append(ah + float.__repr__(finite_logprob(a.logprob)) + at + "}")
        return (
            head
            + float.__repr__(finite_logprob(tok.logprob))
            + tail
            + ',"top_logprobs":['
            + ",".join(alts)
            + "]}"
        )

    def logprobs(self, tok: TokenLogprob) -> str:
        """``dumps(chat_logprobs([tok]))``."""
        return '{"content":[' + self.entry(tok) + '],"refusal":null}'


CHAT_JSON = ChatEntryJSON()


# ---------------------------------------------------------------- legacy Completions


def legacy_token(raw: bytes | None, fallback: str) -> str:
    """OpenAI's legacy token string: the text, or ``bytes:\\xNN...`` when not valid UTF-8."""
    if raw is None:
        return fallback
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return "bytes:" + "".join(f"\\x{b:02x}" for b in raw)


class TextOffsets:
    """Character offsets of successive tokens in the text their bytes build (UTF-8 aware)."""

    def __init__(self, start: int = 0) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self.position = start

    def advance(self, raw: bytes | None, fallback: str) -> int:
        """The offset at which this token starts; moves past it."""
        offset = self.position
        data = raw if raw is not None else fallback.encode("utf-8")
        self.position += len(self._decoder.decode(data))
        return offset


def _legacy_top(tok: TokenLogprob) -> dict[str, float] | None:
    if tok.logprob is None:
        return None
    top: dict[str, float] = {}
    for alt in tok.top_logprobs:
        key = legacy_token(alt.bytes, alt.token)
        top[key] = max(top.get(key, LOGPROB_FLOOR), finite_logprob(alt.logprob))
    key = legacy_token(tok.bytes, tok.token)
    top.setdefault(key, finite_logprob(tok.logprob))  # the sampled token is always included
    return top


def legacy_logprobs(
    tokens: Sequence[TokenLogprob], offsets: TextOffsets, *, top: int | None = None
) -> dict[str, Any]:
    """``{tokens, token_logprobs, top_logprobs, text_offset}`` for ``tokens``.

    ``offsets`` carries the running text position (across streamed chunks). A token without a
    logprob (the first prompt token under ``echo``) gets ``null`` in both logprob lists. ``top``
    trims each ``top_logprobs`` dict to that many alternatives (plus the sampled token).
    """
    out: dict[str, Any] = {
        "tokens": [],
        "token_logprobs": [],
        "top_logprobs": [],
        "text_offset": [],
    }
    for tok in tokens:
        if top is not None and len(tok.top_logprobs) > top:
            tok = TokenLogprob(
                tok.token,
                tok.bytes,
                tok.logprob,
                tok.id,
                tok.rank,
                tok.top_logprobs[:top],
                tok.entropy,
            )
        out["tokens"].append(legacy_token(tok.bytes, tok.token))
        out["token_logprobs"].append(None if tok.logprob is None else finite_logprob(tok.logprob))
        out["top_logprobs"].append(_legacy_top(tok))
        out["text_offset"].append(offsets.advance(tok.bytes, tok.token))
    return out


# ---------------------------------------------------------------- vLLM prompt_logprobs


def vllm_prompt_logprobs(tokens: Sequence[TokenLogprob], k: int) -> list[dict[str, Any] | None]:
    """vLLM's ``prompt_logprobs``: ``[None, {token_id: {logprob, rank, decoded_token}}, ...]``.

    Each position maps the prompt token itself and its ``k`` most likely alternatives.
    """
    out: list[dict[str, Any] | None] = []
    for tok in tokens:
        if tok.logprob is None:
            out.append(None)
            continue
        entry: dict[str, Any] = {}
        for rank, alt in enumerate(tok.top_logprobs[:k], start=1):
            key = str(alt.id) if alt.id is not None else alt.token
            entry[key] = {
                "logprob": finite_logprob(alt.logprob),
                "rank": rank,
                "decoded_token": alt.token,
            }
        key = str(tok.id) if tok.id is not None else tok.token
        entry.setdefault(
            key,
            {"logprob": finite_logprob(tok.logprob), "rank": tok.rank, "decoded_token": tok.token},
        )
        out.append(entry)
    return out


# ---------------------------------------------------------------- bodies and stream frames


def dumps(obj: Any) -> str:
    """Compact JSON; ``allow_nan=False`` makes any stray NaN/inf a loud bug, never bad JSON."""
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def json_response(obj: Any, background: BackgroundTask | None = None) -> Response:
    return Response(dumps(obj), media_type="application/json", background=background)


def new_id(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex}"


@dataclass(frozen=True)
class PromptEcho:
    """An item of an ``echo`` stream: the prompt's own tokens with their logprobs."""

    tokens: tuple[TokenLogprob, ...]


@dataclass(frozen=True)
class PromptCount:
    """An item of a stream asked for usage: how many tokens the prompt has."""

    n: int


class FrameWriter:
    """The SSE frames of one streamed response.

    Chat and legacy completions send chunk objects, ``head`` (id, object, created, model) plus
    ``choices`` (and ``usage`` when the client asked for it, ``null`` until the last chunk); the
    Responses API sends typed events numbered by ``sequence_number``.
    """

    def __init__(
        self, head: Mapping[str, Any] | None = None, *, include_usage: bool = False
    ) -> None:
        self.head = dict(head or {})
        self.include_usage = include_usage
        self.sequence = 0
        self._prefix: str | None = None

    def chunk(self, choices: list[dict[str, Any]], usage: dict[str, int] | None = None) -> str:
        body = {**self.head, "choices": choices}
        if self.include_usage:
            body["usage"] = usage
        return sse_frame(dumps(body))

    def chat_delta(
        self, index: int, content: str | None, logprobs: str | None, finish_reason: str | None
    ) -> str:
        """``chunk([{index, delta, logprobs, finish_reason}])`` of one chat choice, built as
        text: ``content`` None gives an empty delta, ``logprobs`` is ready JSON (or None)."""
        if self._prefix is None:
            self._prefix = dumps(self.head)[:-1] + (',"choices":' if self.head else '"choices":')
        delta = "{}" if content is None else '{"content":' + dumps(content) + "}"
        choice = (
            f'[{{"index":{index},"delta":{delta},"logprobs":{logprobs or "null"},'
            f'"finish_reason":{dumps(finish_reason)}}}]'
        )
        usage = ',"usage":null}' if self.include_usage else "}"
        return "data: " + self._prefix + choice + usage + "\n\n"

    def event(self, kind: str, **fields: Any) -> str:
        frame = sse_frame(
            dumps({"type": kind, "sequence_number": self.sequence, **fields}), event=kind
        )
        self.sequence += 1
        return frame

    @staticmethod
    def done() -> str:
        return sse_frame("[DONE]")


async def guard_stream(frames: AsyncIterator[str]) -> AsyncIterator[str]:
    """Turn an error raised mid-stream into a final OpenAI-shaped error event."""
    try:
        async for frame in frames:
            yield frame
    except LogprobeError as exc:
        yield sse_frame(dumps(error_body(exc.message, exc.error_type, exc.param, exc.code)))
    except Exception as exc:  # a bug: say so in the stream instead of cutting it silently
        logger.exception("stream failed")
        yield sse_frame(
            dumps(
                error_body(
                    f"The server had an error while streaming ({type(exc).__name__}).",
                    "server_error",
                )
            )
        )


__all__ = [
    "CHAT_JSON",
    "ChatEntryJSON",
    "FrameWriter",
    "PromptCount",
    "PromptEcho",
    "TextOffsets",
    "byte_list",
    "chat_alternative",
    "chat_entry",
    "chat_logprobs",
    "dumps",
    "finite_logprob",
    "guard_stream",
    "json_response",
    "legacy_logprobs",
    "legacy_token",
    "new_id",
    "vllm_prompt_logprobs",
]
