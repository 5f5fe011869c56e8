"""Token rows <-> :class:`~logprobe.types.TokenLogprob`, and JSON-safe parameters.

Alternatives are stored per token row as compact JSON: ``[[token, logprob, id], ...]``; a
fourth element appears only when the alternative's bytes are not the UTF-8 of its token: the
bytes as hex, or ``null`` when unknown. Logprobs are clamped to the floor and entropies that
are not finite are dropped, so nothing written is ever NaN or infinite.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping, Sequence
from typing import Any

from .._json import finite, json_safe
from ..types import Alternative, TokenLogprob, clamp_logprob
from .schema import escape_text


def _utf8(text: str) -> bytes:
    return text.encode("utf-8", "surrogatepass")


def encode_alternatives(alts: Sequence[Alternative]) -> str | None:
    """Compact JSON of a token's alternatives (``None`` when there are none)."""
    if not alts:
        return None
    items: list[list[Any]] = []
    for a in alts:
        lp = a.logprob
        item: list[Any] = [a.token, lp if -9999.0 <= lp <= 0.0 else clamp_logprob(lp), a.id]
        if a.bytes != _utf8(a.token):
            item.append(None if a.bytes is None else a.bytes.hex())
        items.append(item)
    return json.dumps(items, allow_nan=False, separators=(",", ":"))


def decode_alternatives(raw: str | None) -> tuple[Alternative, ...]:
    if not raw:
        return ()
    out = []
    for item in json.loads(raw):
        token = item[0]
        given = item[3] if len(item) > 3 else _utf8(token)  # 4th element: hex bytes, or null
        b = bytes.fromhex(given) if isinstance(given, str) else given
        out.append(Alternative(token=token, bytes=b, logprob=float(item[1]), id=item[2]))
    return tuple(out)


def token_tuple(response_id: int, part: int, position: int, t: TokenLogprob) -> tuple[Any, ...]:
    """A ``tokens`` row in :data:`~logprobe.store.schema.TOKEN_COLUMNS` order, text escaped as
    :class:`~logprobe.store.schema.SafeText` does (for the bulk insert)."""
    lp = t.logprob
    if lp is not None and not -9999.0 <= lp <= 0.0:
        lp = clamp_logprob(lp)
    return (
        response_id,
        part,
        position,
        escape_text(t.token),
        t.bytes,
        t.id,
        lp,
        t.rank,
        finite(t.entropy),
        encode_alternatives(t.top_logprobs),
    )


def row_token(row: Any, *, with_alternatives: bool = True) -> TokenLogprob:
    """A token from a ``tokens`` row (a SQLAlchemy Row or mapping)."""
    m = row._mapping if hasattr(row, "_mapping") else row
    raw = m["bytes"]
    return TokenLogprob(
        token=m["token"],
        bytes=None if raw is None else bytes(raw),
        logprob=m["logprob"],
        id=m["token_id"],
        rank=m["rank"],
        top_logprobs=decode_alternatives(m["alternatives"]) if with_alternatives else (),
        entropy=m["entropy"],
    )


def jsonable(value: Any) -> Any:
    """A JSON-safe copy of request parameters: dataclasses become dicts, sets lists, bytes lists
    of ints and unknown objects their ``str``; numbers follow :func:`logprobe._json.json_safe`."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        value = {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [jsonable(v) for v in value]
    if isinstance(value, bytes):
        return list(value)
    safe = json_safe(value)
    return safe if safe is None or isinstance(safe, (bool, int, float, str)) else str(value)
