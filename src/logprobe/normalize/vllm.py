"""vLLM's OpenAI-compatible server: OpenAI chat/completions shapes plus its extensions.

* ``prompt_logprobs`` (top level for chat, per choice for completions): ``[null, {token_id:
  {logprob, rank, decoded_token}}, ...]``, one entry per prompt token. The entry's first key is
  the prompt token itself (or the id from ``prompt_token_ids`` when present); the others are the
  top alternatives. These become :attr:`Choice.prompt_tokens`, with vLLM's own ``rank``.
* ``return_tokens_as_token_ids``: tokens spelled ``token_id:N`` keep the id N, text unknown.
* Partial UTF-8 comes back as U+FFFD (its ``bytes`` too): such bytes are recorded as unknown.
* Logprobs clamp at ``-9999.0``, which stays ``-9999.0``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..types import Alternative, Completion, TokenLogprob
from . import openai_chat, openai_completions
from ._common import (
    Ctx,
    as_int,
    as_list,
    as_obj,
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


def parse(payload: Any, ctx: Ctx, *, base: str) -> Completion:
    """``base`` is ``"openai_chat"`` or ``"openai_completions"`` (found by detection)."""
    ctx.lossy_replacement = True
    if isinstance(payload, Mapping):
        _collect_prompt_logprobs(payload, ctx)
    if base == "openai_chat":
        return openai_chat.parse(payload, ctx)
    return openai_completions.parse(payload, ctx)


def _collect_prompt_logprobs(resp: Mapping[str, Any], ctx: Ctx) -> None:
    if resp.get("prompt_logprobs") is not None:
        ctx.prompt_tokens[-1] = read_prompt_logprobs(
            resp["prompt_logprobs"], "prompt_logprobs", resp.get("prompt_token_ids"), "", ctx
        )
    for i, c in enumerate(get_list(resp, "choices", "") or ()):
        cp = at("choices", i)
        co = as_obj(c, cp)
        if co.get("prompt_logprobs") is not None:
            index = get_int(co, "index", cp, i)
            assert index is not None
            ctx.prompt_tokens[index] = read_prompt_logprobs(
                co["prompt_logprobs"],
                at(cp, "prompt_logprobs"),
                co.get("prompt_token_ids"),
                cp,
                ctx,
            )


def read_prompt_logprobs(
    value: Any, path: str, ids_value: Any, ids_parent: str, ctx: Ctx
) -> list[TokenLogprob]:
    items = as_list(value, path)
    ids_path = at(ids_parent, "prompt_token_ids")
    ids = (
        None
        if ids_value is None
        else [as_int(v, at(ids_path, i)) for i, v in enumerate(as_list(ids_value, ids_path))]
    )
    if ids is not None and len(ids) != len(items):
        raise fail(ids_path, f"has {len(ids)} entries but prompt_logprobs has {len(items)}")
    out = []
    for i, pos in enumerate(items):
        pp = at(path, i)
        want = None if ids is None else ids[i]
        if pos is None:
            if i > 0:
                ctx.notes.add(
                    "null-prompt-pos",
                    pp,
                    "null prompt_logprobs entry after the first: token unknown, logprob None",
                )
            ctx.notes.add(
                "first-prompt-token",
                pp,
                "vLLM gives no text for the first prompt "
                "token (its entry is null): kept with empty text, bytes unknown",
            )
            out.append(TokenLogprob("", None, None, want))
            continue
        out.append(_read_position(as_obj(pos, pp), pp, want, ctx))
    return out


def _read_position(pos: Mapping[str, Any], path: str, want: int | None, ctx: Ctx) -> TokenLogprob:
    if not pos:
        raise fail(path, "empty prompt_logprobs entry: no token")
    entries: list[tuple[int, Alternative, int | None]] = []
    for key, v in pos.items():
        kp = at(path, key)
        try:
            tid = int(key)
        except ValueError:
            raise fail(kp, f"expected a token id as key, got {key!r}") from None
        vo = as_obj(v, kp)
        lp = read_logprob(need(vo, "logprob", kp), at(kp, "logprob"), ctx)
        assert lp is not None
        text = get_str(vo, "decoded_token", kp, "") or ""
        rank = get_int(vo, "rank", kp)
        entries.append((tid, make_alternative(text, None, lp, kp, ctx, id=tid), rank))
    actual_id = entries[0][0] if want is None else want
    mine = [e for e in entries if e[0] == actual_id]
    if not mine:
        raise fail(
            path,
            f"prompt token id {actual_id} (from prompt_token_ids) is not among "
            f"the entry's keys {[e[0] for e in entries]}",
        )
    tid, alt, rank = mine[0]
    ranked = sorted(entries, key=lambda e: e[2] if e[2] is not None else 10**9)
    include_actual = rank is not None and rank <= len(entries)
    alts = [e[1] for e in ranked if e[0] != tid or include_actual]
    return make_token(alt.token, alt.bytes, alt.logprob, alts, path, ctx, id=tid, rank=rank)
