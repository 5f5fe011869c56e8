"""Ollama's native ``/api/generate`` and ``/api/chat`` (logprobs since v0.12.11).

The response (or each NDJSON chunk of a stream) has a top-level ``logprobs: [{token, logprob,
bytes, top_logprobs}]`` for the text in ``response`` (generate) or ``message.content`` (chat).
Ollama turns tokens holding part of a UTF-8 character into U+FFFD with bytes ``[239,191,189]``:
the real bytes are lost, so such tokens get ``bytes=None`` instead of a false value.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from ..types import Completion, FinishReason, Usage
from ._build import ChoiceParts, assemble, map_finish
from ._common import Ctx, as_list, as_obj, at, fail, get_int, get_str, repair_artefacts
from ._entries import read_entries

_FINISH: dict[str, FinishReason] = {
    "stop": "stop",
    "length": "length",
    "load": None,
    "unload": None,
}


def parse(payload: Any, ctx: Ctx) -> Completion:
    ctx.lossy_replacement = True
    chunks = [payload] if isinstance(payload, Mapping) else list(as_list(payload, ""))
    if not chunks:
        raise fail("", "an empty stream: no chunks")
    single = isinstance(payload, Mapping)
    p = ChoiceParts(0, logprobs_path="logprobs" if single else "[0].logprobs")
    model, created, n_prompt, n_gen = "", None, 0, 0
    for n, chunk in enumerate(chunks):
        path = "" if single else at("", n)
        c = as_obj(chunk, path)
        if "error" in c:
            raise fail(at(path, "error"), f"the response is an error: {c['error']}")
        text = _text(c, path)
        p.text_parts.append(text)
        if c.get("logprobs") is not None:
            p.saw_logprobs = True
            p.tokens.extend(read_entries(c["logprobs"], at(path, "logprobs"), ctx, chunk=True))
        elif text and p.text_without_logprobs is None:
            p.text_without_logprobs = at(path, "logprobs")
        if c.get("done"):
            p.finish_reason = map_finish(
                c.get("done_reason"), at(path, "done_reason"), ctx, _FINISH
            )
        model = get_str(c, "model", path, model) or model
        created = created or _created(c)
        n_prompt = get_int(c, "prompt_eval_count", path, n_prompt) or n_prompt
        n_gen = get_int(c, "eval_count", path, n_gen) or n_gen
    p.tokens = list(repair_artefacts(p.tokens, p.text, p.logprobs_path, ctx))
    usage = Usage(n_prompt, n_gen) if (n_prompt or n_gen) else None
    return assemble([p], ctx, model=model, usage=usage, created=created, choices_path="")


def _text(c: Mapping[str, Any], path: str) -> str:
    if "message" in c:
        mp = at(path, "message")
        return get_str(as_obj(c["message"], mp), "content", mp, "") or ""
    return get_str(c, "response", path, "") or ""


def _created(c: Mapping[str, Any]) -> int | None:
    """``created_at`` (RFC 3339, nanosecond fraction) as a Unix time, when it parses."""
    raw = c.get("created_at")
    if not isinstance(raw, str):
        return None
    stamp = re.sub(r"\.\d+", "", raw).replace("Z", "+00:00")
    try:
        when = datetime.fromisoformat(stamp)
    except ValueError:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return int(when.timestamp())
