"""OpenAI legacy Completions (``text_completion``), including ``echo`` and streams.

Per choice, ``logprobs`` holds parallel arrays ``tokens``, ``token_logprobs``, ``top_logprobs``
(one ``{token: logprob}`` object per position, including the sampled token) and ``text_offset``.
With ``echo`` the prompt tokens come first; the very first has ``null`` logprob and ``null`` top
list. They go to :attr:`Choice.prompt_tokens`, split off by ``usage.prompt_tokens``; the echoed
prompt text is cut from :attr:`Choice.text`. Together AI's ``token_ids`` array is read too.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ..types import Completion, TokenLogprob, Usage, tokens_text
from ._build import ChoiceParts, Delta, assemble, map_finish, parse_chunk_stream, read_usage
from ._common import (
    Ctx,
    as_int,
    as_list,
    as_obj,
    as_str,
    at,
    fail,
    get_int,
    get_list,
    get_str,
    make_alternative,
    make_token,
    need,
    read_logprob,
    repair_artefacts,
    same_token,
)

_PARALLEL = ("token_logprobs", "top_logprobs", "text_offset", "token_ids")


def read_parallel(value: Any, path: str, ctx: Ctx) -> tuple[list[TokenLogprob], list[int] | None]:
    """Tokens from the parallel-arrays shape, and the ``text_offset`` array when present."""
    lp = as_obj(value, path)
    tokens = as_list(need(lp, "tokens", path), at(path, "tokens"))
    arrays = {k: get_list(lp, k, path) for k in _PARALLEL}
    if arrays["token_logprobs"] is None:
        raise fail(at(path, "token_logprobs"), "required field is missing")
    for name, arr in arrays.items():
        if arr is not None and len(arr) != len(tokens):
            raise fail(at(path, name), f"has {len(arr)} entries but tokens has {len(tokens)}")
    tops = arrays["top_logprobs"]
    widest = max((len(t) for t in tops or () if isinstance(t, Mapping)), default=0)
    out = []
    for i, tok in enumerate(tokens):
        out.append(
            _read_position(arrays, i, as_str(tok, at(at(path, "tokens"), i)), widest, path, ctx)
        )
    offsets = arrays["text_offset"]
    return out, None if offsets is None else [
        as_int(o, at(at(path, "text_offset"), i)) for i, o in enumerate(offsets)
    ]


def _read_position(
    arrays: Mapping[str, Sequence[Any] | None],
    i: int,
    token: str,
    widest: int,
    path: str,
    ctx: Ctx,
) -> TokenLogprob:
    tl = arrays["token_logprobs"]
    assert tl is not None
    lp_path = at(at(path, "token_logprobs"), i)
    logprob = read_logprob(tl[i], lp_path, ctx, nullable=True)
    if logprob is None and i > 0:
        ctx.notes.add("null-logprob", lp_path, "null logprob kept as None (unknown)")
    ids = arrays["token_ids"]
    tid = None if ids is None else as_int(ids[i], at(at(path, "token_ids"), i))
    alts = []
    tops = arrays["top_logprobs"]
    if tops is not None and tops[i] is not None:
        tpath = at(at(path, "top_logprobs"), i)
        for key, v in as_obj(tops[i], tpath).items():
            vp = at(tpath, key)
            alp = read_logprob(v, vp, ctx)
            assert alp is not None
            alts.append(make_alternative(key, None, alp, vp, ctx))
        alts.sort(key=lambda a: -a.logprob)
    tok = make_token(
        token, None, logprob, alts, at(at(path, "tokens"), i), ctx, id=tid, derive=False
    )
    if logprob is None or not tok.top_logprobs:
        return tok
    rank = dict_rank(tok, widest)
    return TokenLogprob(tok.token, tok.bytes, tok.logprob, tok.id, rank, tok.top_logprobs)


def dict_rank(tok: TokenLogprob, widest: int) -> int | None:
    """The rank of a token from a completions-style ``{token: logprob}`` list, which holds the
    top ``k`` tokens plus the sampled one when that is outside them (so up to ``k + 1``).

    A token above the lowest entry is inside the top ``k``: its rank is exact. The lowest entry
    is inside the top ``k`` only when its list is shorter than the widest one in the response
    (that width is ``k + 1``); otherwise its rank is unknown (it may lie far below the list).
    """
    alts = tok.top_logprobs
    assert tok.logprob is not None
    if not any(same_token(tok.id, tok.bytes, tok.token, a) for a in alts):
        return None
    higher = sum(1 for a in alts if a.logprob > tok.logprob + 1e-9)
    if higher < len(alts) - 1 or len(alts) < widest:
        return higher + 1
    return None


def parse(payload: Any, ctx: Ctx) -> Completion:
    """A ``text_completion`` object, or a list of streamed ``text_completion`` chunks."""
    if isinstance(payload, Mapping):
        return _parse_response(payload, ctx)
    return _parse_stream(as_list(payload, ""), ctx)


def _parse_response(resp: Mapping[str, Any], ctx: Ctx) -> Completion:
    raw = as_list(need(resp, "choices", ""), "choices")
    usage = read_usage(resp, "")
    parts = []
    for i, c in enumerate(raw):
        path = at("choices", i)
        co = as_obj(c, path)
        index = get_int(co, "index", path, i)
        assert index is not None
        p = ChoiceParts(index, logprobs_path=at(path, "logprobs"))
        p.text_parts.append(as_str(need(co, "text", path), at(path, "text")))
        p.finish_reason = map_finish(co.get("finish_reason"), at(path, "finish_reason"), ctx)
        if co.get("logprobs") is not None:
            p.saw_logprobs = True
            p.tokens, offsets = read_parallel(co["logprobs"], at(path, "logprobs"), ctx)
            split_echo(p, offsets, usage, ctx)
        parts.append(p)
    return assemble(
        parts,
        ctx,
        model=get_str(resp, "model", "", "") or "",
        usage=usage,
        id=get_str(resp, "id", ""),
        created=get_int(resp, "created", ""),
    )


def split_echo(p: ChoiceParts, offsets: list[int] | None, usage: Usage | None, ctx: Ctx) -> None:
    """Move echoed prompt tokens to ``prompt_tokens`` and cut the prompt from the text."""
    toks = p.tokens
    if not toks or toks[0].logprob is not None or toks[0].top_logprobs:
        p.tokens = list(repair_artefacts(toks, p.text, p.logprobs_path, ctx))
        return
    n = usage.prompt_tokens if usage is not None else 0
    if not 0 < n <= len(toks):
        ctx.notes.add(
            "echo-unsplit",
            p.logprobs_path,
            "echoed prompt detected but usage.prompt_tokens is missing or inconsistent: prompt "
            "and completion tokens kept together in tokens",
        )
        return
    text = p.text
    prompt_text = tokens_text(toks[:n])
    if text.startswith(prompt_text) and all(t.bytes is not None for t in toks[:n]):
        rest = text[len(prompt_text) :]
    elif offsets is not None and n < len(offsets):
        rest = text[offsets[n] - offsets[0] :]
    elif offsets is not None and n == len(offsets):
        rest = ""
    else:
        ctx.notes.add(
            "echo-text",
            p.logprobs_path,
            "could not cut the echoed prompt from the text: text keeps it",
        )
        rest = text
    p.prompt_tokens = list(toks[:n])
    p.tokens = list(repair_artefacts(toks[n:], rest, p.logprobs_path, ctx))
    p.text_parts = [rest]


def chunk_deltas(chunk: Any, path: str, ctx: Ctx) -> list[Delta]:
    """The per-choice additions of one streamed ``text_completion`` chunk."""
    ch = as_obj(chunk, path)
    if "error" in ch:
        raise fail(at(path, "error"), f"the stream reports an error: {ch['error']}")
    out = []
    for i, c in enumerate(get_list(ch, "choices", path) or ()):
        cp = at(at(path, "choices"), i)
        co = as_obj(c, cp)
        index = get_int(co, "index", cp, i)
        assert index is not None
        tokens: list[TokenLogprob] = []
        has = co.get("logprobs") is not None
        if has:
            tokens, _ = read_parallel(co["logprobs"], at(cp, "logprobs"), ctx)
        out.append(
            Delta(
                index=index,
                text=get_str(co, "text", cp, "") or "",
                tokens=tokens,
                has_logprobs=has,
                finish_reason=map_finish(co.get("finish_reason"), at(cp, "finish_reason"), ctx),
                path=at(cp, "logprobs"),
            )
        )
    return out


def _parse_stream(chunks: Sequence[Any], ctx: Ctx) -> Completion:
    def echo(p: ChoiceParts, usage: Usage | None) -> None:
        split_echo(p, None, usage, ctx)

    return parse_chunk_stream(chunks, ctx, chunk_deltas, echo)
