"""OpenAI Responses API: ``response`` objects and their streamed events.

Logprobs come only with ``include: ["message.output_text.logprobs"]``: every ``output_text``
part of every ``message`` output item then carries ``logprobs: [{token, logprob, bytes,
top_logprobs}]``. A stream's ``response.output_text.delta`` events carry the entries of their
delta (without ``bytes``); ``response.output_text.done`` repeats a whole part's entries. The
parts of one response become one choice; reasoning items carry no logprobs and are skipped.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ..types import Completion, FinishReason, TokenLogprob, Usage
from ._build import ChoiceParts, assemble, read_usage
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
    need,
    repair_artefacts,
)
from ._entries import read_entries


def parse(payload: Any, ctx: Ctx) -> Completion:
    if isinstance(payload, Mapping):
        return _parse_response(payload, "", ctx)
    return _parse_events(as_list(payload, ""), ctx)


def _usage(resp: Mapping[str, Any], path: str) -> Usage | None:
    return read_usage(resp, path, "input_tokens", "output_tokens")


def _finish(resp: Mapping[str, Any], path: str) -> FinishReason:
    status = get_str(resp, "status", path)
    if status == "completed":
        return "stop"
    details = resp.get("incomplete_details")
    if status == "incomplete" and isinstance(details, Mapping):
        reason = details.get("reason")
        if reason == "max_output_tokens":
            return "length"
        if reason == "content_filter":
            return "content_filter"
    return None


def _parse_response(resp: Mapping[str, Any], path: str, ctx: Ctx) -> Completion:
    _raise_if_failed(resp, path)
    out_path = at(path, "output")
    p = ChoiceParts(0, logprobs_path=out_path)
    for i, item in enumerate(as_list(need(resp, "output", path), out_path)):
        ip = at(out_path, i)
        it = as_obj(item, ip)
        if it.get("type") != "message":
            continue
        cpath = at(ip, "content")
        for j, part in enumerate(get_list(it, "content", ip) or ()):
            pp = at(cpath, j)
            po = as_obj(part, pp)
            if po.get("type") != "output_text":
                continue
            text = as_str(need(po, "text", pp), at(pp, "text"))
            p.text_parts.append(text)
            if not p.saw_logprobs:
                p.logprobs_path = at(pp, "logprobs")
            if po.get("logprobs") is not None:
                p.saw_logprobs = True
                toks = read_entries(po["logprobs"], at(pp, "logprobs"), ctx)
                p.tokens.extend(repair_artefacts(toks, text, at(pp, "logprobs"), ctx))
    p.finish_reason = _finish(resp, path)
    if not p.tokens and not p.text:
        raise fail(out_path, "the response has no output text (nothing to normalize)")
    return assemble(
        [p],
        ctx,
        model=get_str(resp, "model", path, "") or "",
        usage=_usage(resp, path),
        id=get_str(resp, "id", path),
        created=get_int(resp, "created_at", path),
        choices_path=out_path,
    )


def _raise_if_failed(resp: Mapping[str, Any], path: str) -> None:
    err = resp.get("error")
    if err:
        msg = err.get("message") if isinstance(err, Mapping) else err
        raise fail(at(path, "error"), f"the response failed: {msg}")


def _parse_events(events: Sequence[Any], ctx: Ctx) -> Completion:
    """Tokens from ``output_text.delta`` events (or ``.done`` events when there are no deltas);
    id, model, usage and finish reason from the ``response.*`` lifecycle events."""
    if not events:
        raise fail("", "an empty stream: no events")
    deltas: dict[tuple[int, int], ChoiceParts] = {}
    dones: dict[tuple[int, int], ChoiceParts] = {}
    final: Mapping[str, Any] | None = None
    final_path = ""
    for n, ev in enumerate(events):
        path = at("", n)
        e = as_obj(ev, path)
        kind = as_str(need(e, "type", path), at(path, "type"))
        if kind == "error":
            raise fail(path, f"the stream reports an error: {e.get('message') or e}")
        if kind in (
            "response.created",
            "response.in_progress",
            "response.completed",
            "response.incomplete",
            "response.failed",
        ):
            final = as_obj(need(e, "response", path), at(path, "response"))
            final_path = at(path, "response")
            _raise_if_failed(final, final_path)
        elif kind == "response.output_text.delta":
            _add_event(deltas, e, path, "delta", ctx)
        elif kind == "response.output_text.done":
            _add_event(dones, e, path, "text", ctx)
    parts = _merge(deltas if any(p.saw_logprobs for p in deltas.values()) else dones, ctx)
    resp = final or {}
    parts.finish_reason = _finish(resp, final_path)
    if not parts.text and not parts.tokens:
        if final is not None and final.get("output"):
            return _parse_response(final, final_path, ctx)
        raise fail("", "the stream has no output_text events (nothing to normalize)")
    return assemble(
        [parts],
        ctx,
        model=get_str(resp, "model", final_path, "") or "",
        usage=_usage(resp, final_path) if final else None,
        id=get_str(resp, "id", final_path),
        created=get_int(resp, "created_at", final_path),
        choices_path="[*]",
    )


def _add_event(
    into: dict[tuple[int, int], ChoiceParts],
    e: Mapping[str, Any],
    path: str,
    text_key: str,
    ctx: Ctx,
) -> None:
    key = (get_int(e, "output_index", path, 0) or 0, get_int(e, "content_index", path, 0) or 0)
    parts = into.setdefault(key, ChoiceParts(0, logprobs_path=at(path, "logprobs")))
    text = as_str(need(e, text_key, path), at(path, text_key))
    parts.text_parts.append(text)
    if e.get("logprobs") is None:
        if text and parts.text_without_logprobs is None:
            parts.text_without_logprobs = at(path, "logprobs")
        return
    toks: list[TokenLogprob] = read_entries(e["logprobs"], at(path, "logprobs"), ctx, chunk=True)
    if toks or not text:
        parts.saw_logprobs = True
    elif parts.text_without_logprobs is None:
        parts.text_without_logprobs = at(path, "logprobs")
    parts.tokens.extend(toks)


def _merge(by_part: Mapping[tuple[int, int], ChoiceParts], ctx: Ctx) -> ChoiceParts:
    merged = ChoiceParts(0, logprobs_path="[*].logprobs")
    for key in sorted(by_part):
        p = by_part[key]
        if not merged.saw_logprobs:
            merged.logprobs_path = p.logprobs_path
        merged.text_parts.append(p.text)
        merged.tokens.extend(repair_artefacts(p.tokens, p.text, p.logprobs_path, ctx))
        merged.saw_logprobs |= p.saw_logprobs
        if merged.text_without_logprobs is None:
            merged.text_without_logprobs = p.text_without_logprobs
    return merged
