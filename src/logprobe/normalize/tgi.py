"""Hugging Face Text Generation Inference ``/generate`` and ``/generate_stream``.

``details: {finish_reason, generated_tokens, prefill: [{id, text, logprob|null}], tokens: [{id,
text, logprob, special}], top_tokens: [[{id, text, logprob, special}]], best_of_sequences}``
(``details: true``; prefill needs ``decoder_input_details: true``; alternatives need
``top_n_tokens``). ``prefill`` becomes :attr:`Choice.prompt_tokens`; ``best_of_sequences`` become
further choices. A stream is a list of ``{index, token, top_tokens, generated_text, details}``
events of one sequence (``index`` is the token's position there).

With ``top_p``/``top_k`` sampling TGI reports alternatives from the truncated distribution (a
single entry with logprob 0); where they contradict the chosen token's logprob they are dropped.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ..types import Completion, FinishReason, TokenLogprob, Usage
from ._build import ChoiceParts, assemble, map_finish, no_logprobs
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
)

_FINISH: dict[str, FinishReason] = {
    "length": "length",
    "eos_token": "stop",
    "stop_sequence": "stop",
}


def parse(payload: Any, ctx: Ctx) -> Completion:
    if isinstance(payload, Mapping):
        return _parse_response(payload, "", ctx)
    items = as_list(payload, "")
    if items and all(isinstance(i, Mapping) and "token" not in i for i in items):
        if len(items) != 1:
            raise fail("", f"a list of {len(items)} complete responses: normalize each one")
        return _parse_response(items[0], at("", 0), ctx)
    return _parse_stream(items, ctx)


def _alt(value: Any, path: str, ctx: Ctx) -> Any:
    o = as_obj(value, path)
    lp = read_logprob(need(o, "logprob", path), at(path, "logprob"), ctx)
    assert lp is not None
    text = as_str(need(o, "text", path), at(path, "text"))
    return make_alternative(
        text, b"" if o.get("special") else None, lp, path, ctx, id=get_int(o, "id", path)
    )


def _token(
    value: Any,
    tops: Sequence[Any] | None,
    path: str,
    tops_path: str,
    ctx: Ctx,
    *,
    nullable: bool = False,
) -> TokenLogprob:
    o = as_obj(value, path)
    lp = read_logprob(need(o, "logprob", path), at(path, "logprob"), ctx, nullable=nullable)
    alts = [_alt(a, at(tops_path, j), ctx) for j, a in enumerate(tops or ())]
    special = bool(o.get("special"))
    if special:
        ctx.notes.add(
            "special", path, "special tokens (EOS) kept with empty bytes: they add no text"
        )
    return make_token(
        as_str(need(o, "text", path), at(path, "text")),
        b"" if special else None,
        lp,
        alts,
        path,
        ctx,
        id=get_int(o, "id", path),
    )


def _sequence(d: Mapping[str, Any], path: str, index: int, text: str, ctx: Ctx) -> ChoiceParts:
    p = ChoiceParts(index, logprobs_path=at(path, "tokens"))
    p.text_parts.append(text)
    p.saw_logprobs = "tokens" in d
    toks = get_list(d, "tokens", path) or ()
    tops = get_list(d, "top_tokens", path)
    if tops is not None and tops and len(tops) != len(toks):
        raise fail(at(path, "top_tokens"), f"has {len(tops)} entries but tokens has {len(toks)}")
    for i, t in enumerate(toks):
        tp = at(at(path, "top_tokens"), i)
        pos_tops = None if not tops else as_list(tops[i], tp)
        p.tokens.append(_token(t, pos_tops, at(at(path, "tokens"), i), tp, ctx))
    prefill = get_list(d, "prefill", path)
    if prefill:
        p.prompt_tokens = [
            _token(t, None, at(at(path, "prefill"), i), "", ctx, nullable=True)
            for i, t in enumerate(prefill)
        ]
    p.finish_reason = map_finish(d.get("finish_reason"), at(path, "finish_reason"), ctx, _FINISH)
    return p


def _parse_response(resp: Any, path: str, ctx: Ctx) -> Completion:
    r = as_obj(resp, path)
    if "error" in r:
        raise fail(at(path, "error"), f"the response is an error: {r['error']}")
    text = as_str(need(r, "generated_text", path), at(path, "generated_text"))
    details = r.get("details")
    if details is None:
        raise no_logprobs(ctx.provider, at(path, "details"), "the response has no details")
    dp = at(path, "details")
    d = as_obj(details, dp)
    parts = [_sequence(d, dp, 0, text, ctx)]
    bos_path = at(dp, "best_of_sequences")
    for k, seq in enumerate(get_list(d, "best_of_sequences", dp) or ()):
        sp = at(bos_path, k)
        so = as_obj(seq, sp)
        parts.append(
            _sequence(
                so, sp, k + 1, as_str(need(so, "generated_text", sp), at(sp, "generated_text")), ctx
            )
        )
    n_prompt = len(parts[0].prompt_tokens or ())
    usage = Usage(n_prompt, get_int(d, "generated_tokens", dp, len(parts[0].tokens)) or 0)
    return assemble(parts, ctx, usage=usage, choices_path=dp)


def _parse_stream(events: Sequence[Any], ctx: Ctx) -> Completion:
    """``/generate_stream`` events of one sequence (their ``index`` is the token position)."""
    if not events:
        raise fail("", "an empty stream: no events")
    p = ChoiceParts(0, logprobs_path="[0].token")
    generated = 0
    for n, ev in enumerate(events):
        path = at("", n)
        e = as_obj(ev, path)
        if "error" in e:
            raise fail(at(path, "error"), f"the stream reports an error: {e['error']}")
        tok = _token(
            need(e, "token", path),
            get_list(e, "top_tokens", path),
            at(path, "token"),
            at(path, "top_tokens"),
            ctx,
        )
        p.saw_logprobs = True
        p.tokens.append(tok)
        final = get_str(e, "generated_text", path)
        if final is not None:
            p.text_parts = [final]
        elif tok.bytes:
            p.text_parts.append(tok.token)
        details = e.get("details")
        if details is not None:
            dp = at(path, "details")
            do = as_obj(details, dp)
            p.finish_reason = map_finish(
                do.get("finish_reason"), at(dp, "finish_reason"), ctx, _FINISH
            )
            generated = as_int(do.get("generated_tokens", 0), at(dp, "generated_tokens"))
    return assemble([p], ctx, choices_path="[*]", usage=Usage(0, generated or len(p.tokens)))
