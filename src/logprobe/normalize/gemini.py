"""Google Gemini ``generateContent`` / ``streamGenerateContent`` (also Vertex AI).

With ``generationConfig.responseLogprobs: true`` (and ``logprobs: N`` alternatives) each
candidate has ``logprobsResult: {chosenCandidates: [{token, tokenId, logProbability}],
topCandidates: [{candidates: [...]}]}``, one entry per generated token. Quirks handled:

* the chosen token may be missing from its own top list: it is not inserted, and its rank is
  left unknown rather than guessed;
* proto3 JSON omits zero values, so a missing ``logProbability`` means 0.0 (noted);
* a stream is a list of responses whose candidates carry the tokens of that chunk.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ..types import Alternative, Completion, FinishReason, TokenLogprob, Usage
from ._build import ChoiceParts, assemble, map_finish
from ._common import (
    Ctx,
    as_list,
    as_obj,
    at,
    fail,
    get_int,
    get_list,
    get_str,
    make_alternative,
    make_token,
    read_logprob,
    repair_artefacts,
)

_FINISH: dict[str, FinishReason] = {
    "STOP": "stop",
    "MAX_TOKENS": "length",
    "SAFETY": "content_filter",
    "RECITATION": "content_filter",
    "BLOCKLIST": "content_filter",
    "PROHIBITED_CONTENT": "content_filter",
    "SPII": "content_filter",
    "IMAGE_SAFETY": "content_filter",
    "MALFORMED_FUNCTION_CALL": None,
    "LANGUAGE": None,
    "OTHER": None,
    "FINISH_REASON_UNSPECIFIED": None,
}


def parse(payload: Any, ctx: Ctx) -> Completion:
    single = isinstance(payload, Mapping)
    chunks = [payload] if single else list(as_list(payload, ""))
    if not chunks:
        raise fail("", "an empty stream: no chunks")
    by_index: dict[int, ChoiceParts] = {}
    model, rid, usage = "", None, None
    for n, chunk in enumerate(chunks):
        path = "" if single else at("", n)
        c = as_obj(chunk, path)
        if "error" in c:
            raise fail(at(path, "error"), f"the response is an error: {c['error']}")
        _read_candidates(c, path, by_index, ctx)
        model = get_str(c, "modelVersion", path, model) or model
        rid = get_str(c, "responseId", path, rid)
        usage = _usage(c, path) or usage
    if not by_index:
        block = _block_reason(chunks)
        why = f" (the prompt was blocked: {block})" if block else ""
        raise fail("candidates", f"no candidates in the payload{why}")
    for p in by_index.values():
        p.tokens = list(repair_artefacts(p.tokens, p.text, p.logprobs_path, ctx))
    return assemble(
        list(by_index.values()), ctx, model=model, usage=usage, id=rid, choices_path="candidates"
    )


def _block_reason(chunks: Sequence[Any]) -> str | None:
    for c in chunks:
        fb = c.get("promptFeedback") if isinstance(c, Mapping) else None
        if isinstance(fb, Mapping) and fb.get("blockReason"):
            return str(fb["blockReason"])
    return None


def _usage(c: Mapping[str, Any], path: str) -> Usage | None:
    u = c.get("usageMetadata")
    if u is None:
        return None
    up = at(path, "usageMetadata")
    uo = as_obj(u, up)
    return Usage(
        get_int(uo, "promptTokenCount", up, 0) or 0, get_int(uo, "candidatesTokenCount", up, 0) or 0
    )


def _read_candidates(
    c: Mapping[str, Any], path: str, by_index: dict[int, ChoiceParts], ctx: Ctx
) -> None:
    cands_path = at(path, "candidates")
    for i, cand in enumerate(get_list(c, "candidates", path) or ()):
        cp = at(cands_path, i)
        co = as_obj(cand, cp)
        index = get_int(co, "index", cp, 0) or 0  # proto3 omits index 0
        lp_path = at(cp, "logprobsResult")
        p = by_index.setdefault(index, ChoiceParts(index, logprobs_path=lp_path))
        text = _text(co, cp)
        p.text_parts.append(text)
        lr = co.get("logprobsResult")
        if lr is not None:
            p.saw_logprobs = True
            p.tokens.extend(_read_logprobs_result(lr, lp_path, ctx))
        elif text and p.text_without_logprobs is None:
            p.text_without_logprobs = lp_path
        if co.get("finishReason") is not None:
            p.finish_reason = map_finish(co["finishReason"], at(cp, "finishReason"), ctx, _FINISH)


def _text(co: Mapping[str, Any], path: str) -> str:
    content = co.get("content")
    if content is None:
        return ""
    cp = at(path, "content")
    out = []
    for j, part in enumerate(get_list(as_obj(content, cp), "parts", cp) or ()):
        po = as_obj(part, at(at(cp, "parts"), j))
        if po.get("thought"):
            continue
        out.append(get_str(po, "text", at(at(cp, "parts"), j), "") or "")
    return "".join(out)


def _candidate(value: Any, path: str, ctx: Ctx) -> tuple[str, float, int | None]:
    o = as_obj(value, path)
    if "logProbability" not in o:
        ctx.notes.add("proto3-zero", path, "logProbability missing (proto3 omits 0.0): read as 0.0")
    lp = read_logprob(o.get("logProbability", 0.0), at(path, "logProbability"), ctx)
    assert lp is not None
    token = get_str(o, "token", path, "") or ""
    return token, lp, get_int(o, "tokenId", path)


def _read_logprobs_result(value: Any, path: str, ctx: Ctx) -> list[TokenLogprob]:
    lr = as_obj(value, path)
    chosen = get_list(lr, "chosenCandidates", path) or ()
    tops = get_list(lr, "topCandidates", path)
    if tops is not None and len(tops) != len(chosen):
        raise fail(
            at(path, "topCandidates"),
            f"has {len(tops)} entries but chosenCandidates has {len(chosen)}",
        )
    out = []
    for i, ch in enumerate(chosen):
        chp = at(at(path, "chosenCandidates"), i)
        token, lp, tid = _candidate(ch, chp, ctx)
        alts = _alternatives(tops[i], at(at(path, "topCandidates"), i), ctx) if tops else []
        tok = make_token(token, None, lp, alts, chp, ctx, id=tid)
        if alts and tok.rank is None and tok.top_logprobs:
            ctx.notes.add(
                "gemini-unlisted", chp, "chosen token missing from its topCandidates: rank unknown"
            )
        out.append(tok)
    return out


def _alternatives(value: Any, path: str, ctx: Ctx) -> list[Alternative]:
    o = as_obj(value, path)
    cpath = at(path, "candidates")
    out = []
    for j, a in enumerate(get_list(o, "candidates", path) or ()):
        ap = at(cpath, j)
        token, lp, tid = _candidate(a, ap, ctx)
        out.append(make_alternative(token, None, lp, ap, ctx, id=tid))
    return out
