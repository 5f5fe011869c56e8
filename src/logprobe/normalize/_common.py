"""Shared reading helpers: typed field access that names the JSON path, token/bytes resolution,
rank derivation and the notes collected while normalizing.

Every reader takes the JSON ``path`` of the value it reads, so an error says exactly where the
payload is wrong (``choices[0].logprobs.content[3].logprob: expected a number, got "x"``).
"""

from __future__ import annotations

import math
import numbers
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..errors import NormalizeError
from ..types import LOGPROB_FLOOR, Alternative, TokenLogprob, display_token

REPLACEMENT = "\ufffd"
REPLACEMENT_BYTES = REPLACEMENT.encode("utf-8")
_TOKEN_ID = re.compile(r"token_id:(\d+)")
_BYTES_TOKEN = re.compile(r"bytes:((?:\\x[0-9a-fA-F]{2})+)")
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
POSITIVE_TOLERANCE = 1e-4
"""Logprobs in (0, tolerance] are float noise and clamp to 0; larger positives are an error."""
CONSISTENCY_TOLERANCE = 1e-3
"""How far a token's logprob may differ from its own entry in the alternatives list."""


# ── paths ──────────────────────────────────────────────────────────────────────────────────────


def at(path: str, key: str | int) -> str:
    """The JSON path of ``key`` under ``path``: ``a.b``, ``a[3]``, ``a["12"]``."""
    if isinstance(key, int):
        return f"{path}[{key}]"
    if _IDENT.fullmatch(key):
        return f"{path}.{key}" if path else key
    return f'{path}["{key}"]'


def _show(value: Any) -> str:
    if isinstance(value, Mapping):
        kind = "an object"
    elif isinstance(value, list | tuple):
        kind = "an array"
    elif value is None:
        return "null"
    elif isinstance(value, bool):
        return "true" if value else "false"
    elif isinstance(value, str):
        s = value if len(value) <= 30 else value[:27] + "..."
        return f"the string {s!r}"
    else:
        s = repr(value)
        return s if len(s) <= 30 else s[:27] + "..."
    return kind


def fail(path: str, message: str) -> NormalizeError:
    return NormalizeError(message, path=path or None)


# ── typed readers ──────────────────────────────────────────────────────────────────────────────


def as_obj(value: Any, path: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise fail(path, f"expected an object, got {_show(value)}")
    return value


def as_list(value: Any, path: str) -> Sequence[Any]:
    if not isinstance(value, list | tuple):
        raise fail(path, f"expected an array, got {_show(value)}")
    return value


def as_str(value: Any, path: str) -> str:
    if not isinstance(value, str):
        raise fail(path, f"expected a string, got {_show(value)}")
    return value


def as_int(value: Any, path: str) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise fail(path, f"expected an integer, got {_show(value)}")
    return int(value)


def as_num(value: Any, path: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise fail(path, f"expected a number, got {_show(value)}")
    return float(value)


def need(obj: Mapping[str, Any], key: str, path: str) -> Any:
    if key not in obj:
        raise fail(at(path, key), "required field is missing")
    return obj[key]


def get_list(obj: Mapping[str, Any], key: str, path: str) -> Sequence[Any] | None:
    """``obj[key]`` as an array, or ``None`` when missing or null."""
    v = obj.get(key)
    return None if v is None else as_list(v, at(path, key))


def get_str(obj: Mapping[str, Any], key: str, path: str, default: str | None = None) -> str | None:
    v = obj.get(key)
    return default if v is None else as_str(v, at(path, key))


def get_int(obj: Mapping[str, Any], key: str, path: str, default: int | None = None) -> int | None:
    v = obj.get(key)
    return default if v is None else as_int(v, at(path, key))


# ── notes ──────────────────────────────────────────────────────────────────────────────────────


@dataclass
class Notes:
    """Quirks met while normalizing, one line per kind (count and first path)."""

    _seen: dict[str, list[Any]] = field(default_factory=dict)

    def add(self, kind: str, path: str, message: str) -> None:
        entry = self._seen.get(kind)
        if entry is None:
            self._seen[kind] = [1, path or "$", message]
        else:
            entry[0] += 1

    def has(self, kind: str) -> bool:
        return kind in self._seen

    def lines(self) -> tuple[str, ...]:
        out = []
        for count, path, message in self._seen.values():
            where = f"{path}" if count == 1 else f"{count} places, first {path}"
            out.append(f"{message} ({where})")
        return tuple(out)


@dataclass
class Ctx:
    """What a provider parser knows about its shape while reading one payload."""

    provider: str
    notes: Notes = field(default_factory=Notes)
    lossy_replacement: bool = False
    """The provider turns partial UTF-8 into U+FFFD, even in ``bytes`` (Ollama, vLLM)."""
    require_logprobs: bool = True
    """False: text without logprobs gives a choice without tokens instead of NoLogprobsError."""
    prompt_tokens: dict[int, list[TokenLogprob]] = field(default_factory=dict)
    """Prompt tokens found outside the choices (vLLM ``prompt_logprobs``), by choice index;
    key -1 applies to every choice."""


# ── numbers ────────────────────────────────────────────────────────────────────────────────────


def read_logprob(value: Any, path: str, ctx: Ctx, *, nullable: bool = False) -> float | None:
    """A logprob: finite, <= 0; ``-inf`` clamps to the floor (noted); NaN and positives fail."""
    if value is None:
        if nullable:
            return None
        raise fail(path, "logprob is null where a number is required")
    v = as_num(value, path)
    if math.isnan(v):
        raise fail(path, "logprob is NaN (the server computed an invalid value)")
    if v == -math.inf:
        ctx.notes.add("neg-inf", path, "-Infinity logprob (invalid JSON) clamped to -9999.0")
        return LOGPROB_FLOOR
    if v > POSITIVE_TOLERANCE:
        raise fail(
            path,
            f"logprob must be <= 0, got {v:g} (a logit? vLLM's --logprobs-mode raw_logits "
            "returns logits in this field)",
        )
    if v < LOGPROB_FLOOR:
        ctx.notes.add("below-floor", path, f"logprobs below {LOGPROB_FLOOR} clamped to it")
        return LOGPROB_FLOOR
    return min(v, 0.0)


def read_prob(value: Any, path: str, ctx: Ctx) -> float:
    """A probability in [0, 1] turned into a logprob (0 becomes the floor, -9999)."""
    p = as_num(value, path)
    if math.isnan(p) or p < 0.0 or p > 1.0 + POSITIVE_TOLERANCE:
        raise fail(path, f"probability must be between 0 and 1, got {p:g}")
    if p <= 0.0:
        ctx.notes.add("zero-prob", path, "probability 0 stored as logprob -9999.0")
        return LOGPROB_FLOOR
    return max(min(math.log(p), 0.0), LOGPROB_FLOOR)


def read_bytes(value: Any, path: str) -> bytes | None:
    """A ``bytes`` field: ``null`` or a list of integers 0..255."""
    if value is None:
        return None
    items = as_list(value, path)
    out = bytearray()
    for i, b in enumerate(items):
        n = as_int(b, at(path, i))
        if not 0 <= n <= 255:
            raise fail(at(path, i), f"a byte must be between 0 and 255, got {n}")
        out.append(n)
    return bytes(out)


# ── token text and bytes ───────────────────────────────────────────────────────────────────────


def _parse_bytes_token(token: str) -> bytes | None:
    m = _BYTES_TOKEN.fullmatch(token)
    if m is None:
        return None
    hexes = m.group(1).split("\\x")[1:]
    return bytes(int(h, 16) for h in hexes)


def resolve_token(
    token: str, given: bytes | None, path: str, ctx: Ctx
) -> tuple[str, bytes | None, int | None]:
    """``(display token, exact bytes or None when unknown, token id from token_id:N)``.

    * ``token_id:N`` (vLLM ``return_tokens_as_token_ids``): the id is N; the text is unknown.
    * ``bytes:\\xNN...`` (OpenAI's spelling of a partial UTF-8 token): the bytes are parsed.
    * U+FFFD with no bytes, or with the replacement's own bytes from a provider known to replace
      partial UTF-8 (Ollama, vLLM): the real bytes are unknown, so ``bytes`` is ``None``.
    * An empty token string without bytes (llama-cpp-python drops partial UTF-8): unknown.
    * Otherwise missing bytes are the UTF-8 encoding of the token string.
    """
    m = _TOKEN_ID.fullmatch(token)
    if m is not None:
        real = None if given is None or given == token.encode() else given
        ctx.notes.add("token-id", path, "tokens given as 'token_id:N': ids kept, text unknown")
        return (token if real is None else display_token(real)), real, int(m.group(1))
    parsed = _parse_bytes_token(token)
    if parsed is not None:
        real = parsed if given is None or given == token.encode() else given
        return display_token(real), real, None
    if given is not None:
        if ctx.lossy_replacement and REPLACEMENT_BYTES in given and REPLACEMENT in token:
            ctx.notes.add(
                "lossy-ufffd",
                path,
                "U+FFFD with replacement bytes (the provider lost a partial UTF-8 token): "
                "bytes set to unknown",
            )
            return token, None, None
        return token, given, None
    if REPLACEMENT in token:
        ctx.notes.add("ufffd", path, "U+FFFD token without bytes: real bytes unknown, kept as None")
        return token, None, None
    if token == "":
        ctx.notes.add("empty-token", path, "empty token string without bytes: bytes unknown")
        return token, None, None
    return token, token.encode("utf-8"), None


def make_alternative(
    token: str, given: bytes | None, logprob: float, path: str, ctx: Ctx, *, id: int | None = None
) -> Alternative:
    text, raw, tid = resolve_token(token, given, path, ctx)
    return Alternative(token=text, bytes=raw, logprob=logprob, id=id if id is not None else tid)


def same_token(a_id: int | None, a_bytes: bytes | None, a_text: str, alt: Alternative) -> bool:
    if a_id is not None and alt.id is not None:
        return a_id == alt.id
    if a_bytes is not None and alt.bytes is not None:
        return a_bytes == alt.bytes
    return a_text == alt.token


def make_token(
    token: str,
    given: bytes | None,
    logprob: float | None,
    alts: Sequence[Alternative],
    path: str,
    ctx: Ctx,
    *,
    id: int | None = None,
    rank: int | None = None,
    derive: bool = True,
) -> TokenLogprob:
    """Build a token, deriving its rank from the alternatives where that is sound.

    The alternatives must come from the same distribution as the token: when the token appears
    among them with a different logprob (TGI's ``top_p`` truncation leaves one alternative with
    logprob 0), they are dropped (noted) rather than shown as the model's confidence.
    """
    text, raw, tid = resolve_token(token, given, path, ctx)
    tid = id if id is not None else tid
    alts = tuple(alts)
    if logprob is not None and alts:
        mine = [a for a in alts if same_token(tid, raw, text, a)]
        if mine and abs(mine[0].logprob - logprob) > CONSISTENCY_TOLERANCE:
            ctx.notes.add(
                "alt-mismatch",
                path,
                "alternatives disagree with the chosen token's own logprob (truncated or "
                "processed by top_p/top_k): dropped, rank unknown",
            )
            return TokenLogprob(text, raw, logprob, tid, rank, (), None)
        if rank is None and derive:
            rank = derive_rank(logprob, bool(mine), alts)
    return TokenLogprob(text, raw, logprob, tid, rank, alts, None)


def derive_rank(logprob: float, listed: bool, alts: Sequence[Alternative]) -> int | None:
    """1 + the number of alternatives strictly more likely, when the token is in the top list.

    A token missing from its own top list (Gemini does this) has no derivable rank: either it
    ranks below the list, or the list is not a true top-k.
    """
    if not listed:
        return None
    return 1 + sum(1 for a in alts if a.logprob > logprob + 1e-9)


# ── bytes repair from the provider's own text ──────────────────────────────────────────────────


def _bytelevel_table() -> dict[str, int]:
    """GPT-2 byte-level BPE's printable stand-ins, inverted: char -> byte."""
    keep = [*range(0x21, 0x7F), *range(0xA1, 0xAD), *range(0xAE, 0x100)]
    table = {chr(b): b for b in keep}
    extra = 0
    for b in range(256):
        if b not in keep:
            table[chr(256 + extra)] = b
            extra += 1
    return table


_BYTELEVEL = _bytelevel_table()


def _bytelevel_decode(token: str) -> bytes | None:
    try:
        return bytes(_BYTELEVEL[c] for c in token)
    except KeyError:
        return None


def repair_artefacts(
    tokens: Sequence[TokenLogprob], text: str, path: str, ctx: Ctx
) -> tuple[TokenLogprob, ...]:
    """Undo byte-level BPE (``Ġ``) or SentencePiece (``▁``) spellings leaking into tokens.

    Applied only when the tokens' bytes do not rebuild ``text`` and the decoded spelling rebuilds
    it exactly, so a correct payload is never touched.
    """
    if not tokens or not text or any(t.bytes is None for t in tokens):
        return tuple(tokens)
    target = text.encode("utf-8")
    if b"".join(t.bytes or b"" for t in tokens) == target:
        return tuple(tokens)
    for name, decode in (("byte-level BPE", _bytelevel_decode), ("SentencePiece", _sp_decode)):
        fixed = [decode(t.token) for t in tokens]
        if all(f is not None for f in fixed) and b"".join(f or b"" for f in fixed) == target:
            ctx.notes.add(
                "bpe-artefacts",
                path,
                f"token strings were raw {name} vocabulary entries: decoded against the text",
            )
            return tuple(
                TokenLogprob(
                    display_token(f),
                    f,
                    t.logprob,
                    t.id,
                    t.rank,
                    tuple(_redecode(a, decode) for a in t.top_logprobs),
                    t.entropy,
                )
                for t, f in zip(tokens, fixed, strict=True)
            )
    return tuple(tokens)


def _sp_decode(token: str) -> bytes | None:
    return token.replace("\u2581", " ").encode("utf-8")


def _redecode(alt: Alternative, decode: Any) -> Alternative:
    raw = decode(alt.token)
    if raw is None:
        return alt
    return Alternative(display_token(raw), raw, alt.logprob, alt.id)
