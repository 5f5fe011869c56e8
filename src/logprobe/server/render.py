"""Render core :class:`~logprobe.types.TokenLogprob` values into each OpenAI logprobs shape.

Every number goes through :func:`finite_logprob`, so no ``-inf``/NaN ever reaches JSON (values
below :data:`~logprobe.types.LOGPROB_FLOOR` become ``-9999.0``, as OpenAI documents).
"""

from __future__ import annotations

import codecs
from collections.abc import Iterable, Sequence
from typing import Any

from ..types import LOGPROB_FLOOR, Alternative, TokenLogprob, clamp_logprob


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
    out: dict[str, Any] = {"tokens": [], "token_logprobs": [], "top_logprobs": [], "text_offset": []}
    for tok in tokens:
        if top is not None and len(tok.top_logprobs) > top:
            tok = TokenLogprob(tok.token, tok.bytes, tok.logprob, tok.id, tok.rank,
                               tok.top_logprobs[:top], tok.entropy)
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
            entry[key] = {"logprob": finite_logprob(alt.logprob), "rank": rank,
                          "decoded_token": alt.token}
        key = str(tok.id) if tok.id is not None else tok.token
        entry.setdefault(key, {"logprob": finite_logprob(tok.logprob), "rank": tok.rank,
                               "decoded_token": tok.token})
        out.append(entry)
    return out


__all__ = [
    "TextOffsets",
    "byte_list",
    "chat_alternative",
    "chat_entry",
    "chat_logprobs",
    "finite_logprob",
    "legacy_logprobs",
    "legacy_token",
    "vllm_prompt_logprobs",
]
