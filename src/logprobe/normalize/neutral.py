"""logprobe's own neutral shape (:meth:`Completion.to_dict`), read back with validation."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..types import Completion
from ._build import no_logprobs
from ._common import Ctx, as_list, as_obj, at, fail, need


def parse(payload: Any, ctx: Ctx) -> Completion:
    if not isinstance(payload, Mapping):
        raise fail("", "logprobe's neutral shape is one object, not a list")
    choices = as_list(need(payload, "choices", ""), "choices")
    if not choices:
        raise fail("choices", "no choices in the payload (empty result)")
    for i, c in enumerate(choices):
        cp = at("choices", i)
        co = as_obj(c, cp)
        toks = as_list(need(co, "tokens", cp), at(cp, "tokens"))
        if not toks and co.get("text") and not co.get("prompt_tokens"):
            raise no_logprobs("logprobe", at(cp, "tokens"), "the choice has text but no tokens")
        for j, t in enumerate(toks):
            tp = at(at(cp, "tokens"), j)
            to = as_obj(t, tp)
            need(to, "token", tp)
            lp = to.get("logprob")
            if lp is not None and (isinstance(lp, bool) or not isinstance(lp, int | float)):
                raise fail(at(tp, "logprob"), f"expected a number or null, got {lp!r}")
    try:
        return Completion.from_dict(payload)
    except (KeyError, TypeError, ValueError) as e:
        raise fail("", f"not a valid logprobe completion: {type(e).__name__}: {e}") from None
