"""The ``{token, logprob, bytes, top_logprobs}`` entry used by OpenAI chat, the Responses API,
vLLM, Ollama and llama.cpp's OpenAI endpoints (``bytes`` may be missing or null)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..types import Alternative, TokenLogprob
from ._common import (
    Ctx,
    as_list,
    as_obj,
    as_str,
    at,
    get_list,
    make_alternative,
    make_token,
    need,
    read_bytes,
    read_logprob,
)


def read_alternative(value: Any, path: str, ctx: Ctx) -> Alternative:
    e = as_obj(value, path)
    token = as_str(need(e, "token", path), at(path, "token"))
    lp = read_logprob(need(e, "logprob", path), at(path, "logprob"), ctx)
    assert lp is not None
    return make_alternative(token, read_bytes(e.get("bytes"), at(path, "bytes")), lp, path, ctx)


def read_entry(value: Any, path: str, ctx: Ctx) -> TokenLogprob:
    e = as_obj(value, path)
    token = as_str(need(e, "token", path), at(path, "token"))
    lp = read_logprob(need(e, "logprob", path), at(path, "logprob"), ctx, nullable=True)
    if lp is None:
        ctx.notes.add("null-logprob", at(path, "logprob"), "null logprob kept as None (unknown)")
    tops_path = at(path, "top_logprobs")
    tops = get_list(e, "top_logprobs", path) or ()
    alts = [read_alternative(a, at(tops_path, i), ctx) for i, a in enumerate(tops)]
    return make_token(token, read_bytes(e.get("bytes"), at(path, "bytes")), lp, alts, path, ctx)


def read_entries(value: Any, path: str, ctx: Ctx, *, chunk: bool = False) -> list[TokenLogprob]:
    """A list of entries. ``chunk=True`` marks one streaming chunk's entries, where a server bug
    (SGLang) repeats the first token's alternatives for every token of the chunk."""
    items = as_list(value, path)
    tokens = [read_entry(e, at(path, i), ctx) for i, e in enumerate(items)]
    if chunk and len(tokens) > 1:
        tokens = _drop_repeated_alternatives(items, tokens, path, ctx)
    return tokens


def _drop_repeated_alternatives(
    items: Sequence[Any], tokens: list[TokenLogprob], path: str, ctx: Ctx
) -> list[TokenLogprob]:
    first = items[0].get("top_logprobs")
    if not first:
        return tokens
    out = [tokens[0]]
    for i in range(1, len(tokens)):
        t = tokens[i]
        repeated = items[i].get("top_logprobs") == first and t.token != tokens[0].token
        if repeated:
            ctx.notes.add(
                "repeated-alts",
                at(path, i),
                "a multi-token chunk repeats its first token's alternatives for later tokens "
                "(server bug): those copies dropped, rank unknown",
            )
            t = TokenLogprob(t.token, t.bytes, t.logprob, t.id, None, (), t.entropy)
        out.append(t)
    return out
