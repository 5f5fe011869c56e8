"""OpenAI Chat Completions: ``chat.completion`` objects and ``chat.completion.chunk`` streams.

Per choice, ``logprobs.content`` holds ``{token, logprob, bytes, top_logprobs}`` entries for the
tokens of ``message.content`` (``logprobs.refusal`` for a refusal). A streamed chunk's entries
cover exactly that chunk's delta. Also read this way: vLLM, llama.cpp's and llama-cpp-python's
OpenAI endpoints, Ollama's and TGI's OpenAI-compatible routes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ..types import Completion
from ._build import ChoiceParts, Delta, assemble, map_finish, parse_chunk_stream, read_usage
from ._common import (
    Ctx,
    as_list,
    as_obj,
    at,
    fail,
    get_int,
    get_list,
    get_str,
    need,
    repair_artefacts,
)
from ._entries import read_entries


def parse(payload: Any, ctx: Ctx) -> Completion:
    """A ``chat.completion`` object, or a list of ``chat.completion.chunk`` objects."""
    if isinstance(payload, Mapping):
        return _parse_response(payload, ctx)
    return _parse_stream(as_list(payload, ""), ctx)


def _parse_response(resp: Mapping[str, Any], ctx: Ctx, path: str = "") -> Completion:
    raw = as_list(need(resp, "choices", path), at(path, "choices"))
    parts: list[ChoiceParts] = []
    seen: set[int] = set()
    for i, c in enumerate(raw):
        p = _read_choice(c, at(at(path, "choices"), i), i, ctx)
        if p.index in seen:
            raise fail(at(at(at(path, "choices"), i), "index"), f"duplicate choice index {p.index}")
        seen.add(p.index)
        parts.append(p)
    return assemble(
        parts,
        ctx,
        model=get_str(resp, "model", path, "") or "",
        usage=read_usage(resp, path),
        id=get_str(resp, "id", path),
        created=get_int(resp, "created", path),
        choices_path=at(path, "choices"),
    )


def _read_choice(value: Any, path: str, position: int, ctx: Ctx) -> ChoiceParts:
    c = as_obj(value, path)
    index = get_int(c, "index", path, position)
    assert index is not None
    msg_path = at(path, "message")
    msg = as_obj(need(c, "message", path), msg_path)
    content = get_str(msg, "content", msg_path)
    refusal = get_str(msg, "refusal", msg_path)
    lp_path = at(path, "logprobs")
    parts = ChoiceParts(index, logprobs_path=lp_path)
    parts.finish_reason = map_finish(c.get("finish_reason"), at(path, "finish_reason"), ctx)
    key = "content"
    text = content or ""
    if not content and refusal:
        key, text = "refusal", refusal
        ctx.notes.add("refusal", msg_path, "the model refused: text and tokens are the refusal")
    parts.text_parts.append(text)
    lp = c.get("logprobs")
    if lp is not None:
        lpo = as_obj(lp, lp_path)
        entries = lpo.get(key)
        if entries is not None:
            parts.saw_logprobs = True
            tokens = read_entries(entries, at(lp_path, key), ctx)
            parts.tokens = list(repair_artefacts(tokens, text, at(lp_path, key), ctx))
    return parts


def chunk_deltas(chunk: Any, path: str, ctx: Ctx) -> list[Delta]:
    """The per-choice additions of one ``chat.completion.chunk`` (used for live streams too)."""
    ch = as_obj(chunk, path)
    if "error" in ch:
        raise fail(at(path, "error"), f"the stream reports an error: {_error_text(ch['error'])}")
    out = []
    cpath = at(path, "choices")
    for i, c in enumerate(get_list(ch, "choices", path) or ()):
        out.append(_read_chunk_choice(c, at(cpath, i), i, ctx))
    return out


def _read_chunk_choice(value: Any, path: str, position: int, ctx: Ctx) -> Delta:
    c = as_obj(value, path)
    index = get_int(c, "index", path, position)
    assert index is not None
    delta = c.get("delta")
    d = as_obj(delta, at(path, "delta")) if delta is not None else {}
    text = get_str(d, "content", at(path, "delta")) or ""
    key = "content"
    if not text and d.get("refusal"):
        key, text = "refusal", get_str(d, "refusal", at(path, "delta")) or ""
    lp_path = at(path, "logprobs")
    lp = c.get("logprobs")
    tokens: list[Any] = []
    has = False
    if lp is not None:
        lpo = as_obj(lp, lp_path)
        if lpo.get(key) is not None:
            has = True
            tokens = read_entries(lpo[key], at(lp_path, key), ctx, chunk=True)
    return Delta(
        index=index,
        text=text,
        tokens=tokens,
        has_logprobs=has,
        finish_reason=map_finish(c.get("finish_reason"), at(path, "finish_reason"), ctx),
        path=lp_path,
    )


def _parse_stream(chunks: Sequence[Any], ctx: Ctx) -> Completion:
    def repair(p: ChoiceParts, _usage: Any) -> None:
        p.tokens = list(repair_artefacts(p.tokens, p.text, p.logprobs_path, ctx))

    return parse_chunk_stream(chunks, ctx, chunk_deltas, repair)


def _error_text(err: Any) -> str:
    if isinstance(err, Mapping):
        return str(err.get("message") or err)
    return str(err)
