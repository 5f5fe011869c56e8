"""Together AI: chat and completions with parallel-array logprobs (``logprobs`` is an integer).

Choice ``logprobs: {token_ids, tokens, token_logprobs, top_logprobs}`` (``top_logprobs`` one
``{token: logprob}`` object per position); ``echo: true`` adds a top-level ``prompt: [{text,
logprobs: {...}}]`` whose tokens become :attr:`Choice.prompt_tokens`. Streamed chunks carry the
token's logprob as a bare number in ``choices[].logprobs`` and its id in ``delta.token_id``
(stream shape unconfirmed by a primary source; read leniently).
"""

from __future__ import annotations

import numbers
from collections.abc import Mapping, Sequence
from typing import Any

from ..types import Completion, TokenLogprob
from ._build import ChoiceParts, Delta, assemble, map_finish, parse_chunk_stream, read_usage
from ._common import (
    Ctx,
    as_list,
    as_obj,
    as_str,
    at,
    fail,
    get_int,
    get_list,
    get_str,
    make_token,
    need,
    read_logprob,
    repair_artefacts,
)
from .openai_completions import read_parallel


def parse(payload: Any, ctx: Ctx) -> Completion:
    if isinstance(payload, Mapping):
        return _parse_response(payload, ctx)
    return _parse_stream(as_list(payload, ""), ctx)


def _choice_text(c: Mapping[str, Any], path: str) -> str:
    if "message" in c:
        mp = at(path, "message")
        return get_str(as_obj(c["message"], mp), "content", mp, "") or ""
    return as_str(need(c, "text", path), at(path, "text"))


def _prompts(resp: Mapping[str, Any], ctx: Ctx) -> list[list[TokenLogprob] | None]:
    out: list[list[TokenLogprob] | None] = []
    for i, pr in enumerate(get_list(resp, "prompt", "") or ()):
        pp = at("prompt", i)
        po = as_obj(pr, pp)
        lp = po.get("logprobs")
        if lp is None:
            out.append(None)
            continue
        toks, _ = read_parallel(lp, at(pp, "logprobs"), ctx)
        text = get_str(po, "text", pp, "") or ""
        out.append(list(repair_artefacts(toks, text, at(pp, "logprobs"), ctx)))
    return out


def _parse_response(resp: Mapping[str, Any], ctx: Ctx) -> Completion:
    raw = as_list(need(resp, "choices", ""), "choices")
    prompts = _prompts(resp, ctx)
    if len(prompts) > 1 and len(prompts) != len(raw):
        raise fail("prompt", f"has {len(prompts)} entries for {len(raw)} choices")
    parts = []
    for i, c in enumerate(raw):
        path = at("choices", i)
        co = as_obj(c, path)
        index = get_int(co, "index", path, i)
        assert index is not None
        p = ChoiceParts(index, logprobs_path=at(path, "logprobs"))
        text = _choice_text(co, path)
        p.text_parts.append(text)
        p.finish_reason = map_finish(co.get("finish_reason"), at(path, "finish_reason"), ctx)
        if co.get("logprobs") is not None:
            p.saw_logprobs = True
            toks, _ = read_parallel(co["logprobs"], at(path, "logprobs"), ctx)
            p.tokens = list(repair_artefacts(toks, text, at(path, "logprobs"), ctx))
        if prompts:
            p.prompt_tokens = prompts[i if len(prompts) > 1 else 0]
        parts.append(p)
    return assemble(
        parts,
        ctx,
        model=get_str(resp, "model", "", "") or "",
        usage=read_usage(resp, ""),
        id=get_str(resp, "id", ""),
        created=get_int(resp, "created", ""),
    )


def chunk_deltas(chunk: Any, path: str, ctx: Ctx) -> list[Delta]:
    ch = as_obj(chunk, path)
    if "error" in ch:
        raise fail(at(path, "error"), f"the stream reports an error: {ch['error']}")
    out = []
    for i, c in enumerate(get_list(ch, "choices", path) or ()):
        cp = at(at(path, "choices"), i)
        co = as_obj(c, cp)
        delta = co.get("delta")
        d = as_obj(delta, at(cp, "delta")) if delta is not None else {}
        text = get_str(d, "content", at(cp, "delta")) or get_str(co, "text", cp, "") or ""
        lp = co.get("logprobs")
        lp_path = at(cp, "logprobs")
        tokens: list[TokenLogprob] = []
        if isinstance(lp, numbers.Real) and not isinstance(lp, bool):
            tid = get_int(d, "token_id", at(cp, "delta"))
            tokens = [
                make_token(text, None, read_logprob(lp, lp_path, ctx), (), lp_path, ctx, id=tid)
            ]
        elif lp is not None:
            tokens, _ = read_parallel(lp, lp_path, ctx)
        out.append(
            Delta(
                index=get_int(co, "index", cp, i) or 0,
                text=text,
                tokens=tokens,
                has_logprobs=lp is not None,
                finish_reason=map_finish(co.get("finish_reason"), at(cp, "finish_reason"), ctx),
                path=lp_path,
            )
        )
    return out


def _parse_stream(chunks: Sequence[Any], ctx: Ctx) -> Completion:
    return parse_chunk_stream(chunks, ctx, chunk_deltas)
