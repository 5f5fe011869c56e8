"""llama.cpp server's native ``/completion`` (``n_probs``), whole responses and streamed chunks.

``completion_probabilities: [{id, token, bytes, logprob, top_logprobs: [{id, token, bytes,
logprob}]}]``. With ``post_sampling_probs: true`` the entries hold ``prob`` / ``top_probs``
(0..1, after the sampler chain): they become logprobs with ``logprob_mode="processed"``.
The pre-2025 shape ``{content, probs: [{tok_str, prob}]}`` (post-sampling too) is read as well.
A stream is a list of chunks ``{content, stop, completion_probabilities}``; several prompts give
results with different ``index`` values, which become separate choices.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..types import Completion, FinishReason, LogprobMode, TokenLogprob, Usage
from ._build import ChoiceParts, assemble, map_finish
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
    read_bytes,
    read_logprob,
    read_prob,
    repair_artefacts,
)

_STOP_TYPE: dict[str, FinishReason] = {"eos": "stop", "word": "stop", "limit": "length"}


def parse(payload: Any, ctx: Ctx) -> Completion:
    items = [payload] if isinstance(payload, Mapping) else list(as_list(payload, ""))
    if not items:
        raise fail("", "an empty stream: no chunks")
    base = "" if isinstance(payload, Mapping) else None
    by_index: dict[int, ChoiceParts] = {}
    modes: set[str] = set()
    model, n_prompt, n_gen = "", 0, 0
    for n, item in enumerate(items):
        path = base if base is not None else at("", n)
        it = as_obj(item, path)
        if "error" in it:
            raise fail(at(path, "error"), f"the response is an error: {it['error']}")
        index = get_int(it, "index", path, 0)
        assert index is not None
        p = by_index.setdefault(index, ChoiceParts(index, logprobs_path=path))
        text = get_str(it, "content", path, "") or ""
        p.text_parts.append(text)
        probs = it.get("completion_probabilities")
        if probs is not None:
            p.saw_logprobs = True
            p.tokens.extend(_read_probs(probs, at(path, "completion_probabilities"), ctx, modes))
        elif text and p.text_without_logprobs is None:
            p.text_without_logprobs = at(path, "completion_probabilities")
        if it.get("stop"):
            p.finish_reason = _finish(it, path, ctx)
        model = get_str(it, "model", path, model) or model
        n_prompt = get_int(it, "tokens_evaluated", path, n_prompt) or n_prompt
        n_gen = get_int(it, "tokens_predicted", path, n_gen) or n_gen
    if len(modes) > 1:
        raise fail("", "entries mix logprobs and post-sampling probs in one response")
    for p in by_index.values():
        p.tokens = list(repair_artefacts(p.tokens, p.text, p.logprobs_path, ctx))
    mode: LogprobMode = "processed" if modes == {"processed"} else "raw"
    usage = Usage(n_prompt, n_gen) if n_prompt or n_gen else None
    return assemble(
        list(by_index.values()), ctx, model=model, usage=usage, mode=mode, choices_path=""
    )


def _finish(it: Mapping[str, Any], path: str, ctx: Ctx) -> FinishReason:
    stop_type = it.get("stop_type")
    if stop_type is not None:
        if stop_type == "none":
            return None
        return map_finish(stop_type, at(path, "stop_type"), ctx, _STOP_TYPE)
    if it.get("stopped_limit"):
        return "length"
    if it.get("stopped_eos") or it.get("stopped_word"):
        return "stop"
    return None


def _read_probs(value: Any, path: str, ctx: Ctx, modes: set[str]) -> list[TokenLogprob]:
    out = []
    for i, e in enumerate(as_list(value, path)):
        ep = at(path, i)
        eo = as_obj(e, ep)
        if "probs" in eo and "token" not in eo:
            modes.add("processed")
            out.append(_read_legacy(eo, ep, ctx))
        elif "prob" in eo or "top_probs" in eo:
            modes.add("processed")
            out.append(_read_entry(eo, ep, ctx, "prob", "top_probs"))
        else:
            modes.add("raw")
            out.append(_read_entry(eo, ep, ctx, "logprob", "top_logprobs"))
    return out


def _value(e: Mapping[str, Any], key: str, path: str, ctx: Ctx) -> float:
    vp = at(path, key)
    if key == "prob":
        return read_prob(need(e, key, path), vp, ctx)
    v = read_logprob(need(e, key, path), vp, ctx)
    assert v is not None
    return v


def _read_entry(
    e: Mapping[str, Any], path: str, ctx: Ctx, value_key: str, tops_key: str
) -> TokenLogprob:
    tops_path = at(path, tops_key)
    alts = []
    for j, a in enumerate(get_list(e, tops_key, path) or ()):
        ap = at(tops_path, j)
        ao = as_obj(a, ap)
        alts.append(
            make_alternative(
                as_str(need(ao, "token", ap), at(ap, "token")),
                read_bytes(ao.get("bytes"), at(ap, "bytes")),
                _value(ao, value_key, ap, ctx),
                ap,
                ctx,
                id=None if ao.get("id") is None else as_int(ao["id"], at(ap, "id")),
            )
        )
    return make_token(
        as_str(need(e, "token", path), at(path, "token")),
        read_bytes(e.get("bytes"), at(path, "bytes")),
        _value(e, value_key, path, ctx),
        alts,
        path,
        ctx,
        id=None if e.get("id") is None else as_int(e["id"], at(path, "id")),
    )


def _read_legacy(e: Mapping[str, Any], path: str, ctx: Ctx) -> TokenLogprob:
    """``{content, probs: [{tok_str, prob}]}``: the chosen token's probability is its entry in
    ``probs`` when listed; otherwise it is unknown (None)."""
    token = as_str(need(e, "content", path), at(path, "content"))
    alts = []
    ppath = at(path, "probs")
    for j, a in enumerate(as_list(e["probs"], ppath)):
        ap = at(ppath, j)
        ao = as_obj(a, ap)
        alts.append(
            make_alternative(
                as_str(need(ao, "tok_str", ap), at(ap, "tok_str")),
                None,
                read_prob(need(ao, "prob", ap), at(ap, "prob"), ctx),
                ap,
                ctx,
            )
        )
    listed = [a.logprob for a in alts if a.token == token]
    if not listed:
        ctx.notes.add(
            "legacy-unlisted",
            path,
            "legacy llama.cpp entry: chosen token not among probs, logprob unknown",
        )
    return make_token(token, None, listed[0] if listed else None, alts, path, ctx)
