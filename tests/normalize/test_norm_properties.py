"""Properties of the normalizer that hold for any input (hypothesis)."""

from __future__ import annotations

import json
import math

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from norm_fixtures import chat_chunk, chat_response

from logprobe.engines._remote_stream import split_text
from logprobe.normalize import load_payload, normalize
from logprobe.normalize._common import Ctx
from logprobe.normalize.openai_completions import read_parallel
from logprobe.types import Completion, TokenLogprob

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

logprobs = st.one_of(
    st.floats(min_value=-40.0, max_value=0.0),
    st.just(-9999.0),
    st.floats(min_value=-1e6, max_value=-9999.0),
    st.just(1e-6),
)


@st.composite
def split_bytes(draw: st.DrawFn) -> tuple[str, list[bytes]]:
    """A text and its UTF-8 bytes cut at arbitrary places (possibly inside a character)."""
    text = draw(st.text(min_size=1, max_size=12))
    raw = text.encode("utf-8")
    cuts = sorted(draw(st.sets(st.integers(1, max(1, len(raw) - 1)), max_size=len(raw))))
    bounds = [0, *[c for c in cuts if 0 < c < len(raw)], len(raw)]
    return text, [raw[a:b] for a, b in zip(bounds, bounds[1:], strict=False) if b > a]


def _entry(piece: bytes, lp: float, alts: list[float]) -> dict:
    token = piece.decode("utf-8", errors="replace")
    tops = [
        {"token": f"alt{i}", "logprob": a, "bytes": list(f"alt{i}".encode())}
        for i, a in enumerate(alts)
    ]
    tops.append({"token": token, "logprob": lp, "bytes": list(piece)})
    return {
        "token": token,
        "logprob": lp,
        "bytes": list(piece),
        "top_logprobs": sorted(tops, key=lambda t: -t["logprob"]),
    }


@st.composite
def chat_case(draw: st.DrawFn) -> tuple[str, list[dict]]:
    text, pieces = draw(split_bytes())
    entries = [
        _entry(p, draw(logprobs), draw(st.lists(st.floats(-40.0, 0.0), max_size=3))) for p in pieces
    ]
    return text, entries


@SETTINGS
@given(chat_case())
def test_bytes_rebuild_text_and_values_are_clean(case: tuple[str, list[dict]]) -> None:
    text, entries = case
    comp = normalize(chat_response(entries, text))
    assert b"".join(t.bytes or b"" for t in comp.tokens) == text.encode("utf-8")
    for t in comp.tokens:
        assert t.logprob is not None and math.isfinite(t.logprob) and -9999.0 <= t.logprob <= 0
        assert t.rank is not None and 1 <= t.rank <= len(t.top_logprobs)
        assert t.rank == 1 + sum(1 for a in t.top_logprobs if a.logprob > t.logprob + 1e-9)
    dumped = json.dumps(comp.to_dict(), allow_nan=False)
    assert Completion.from_dict(json.loads(dumped)) == comp


@SETTINGS
@given(chat_case(), st.data())
def test_streaming_in_any_chunking_equals_the_whole_response(
    case: tuple[str, list[dict]], data: st.DataObject
) -> None:
    text, entries = case
    whole = normalize(chat_response(entries, text))
    cuts = sorted(data.draw(st.sets(st.integers(1, len(entries)), max_size=len(entries))))
    bounds = [0, *[c for c in cuts if c < len(entries)], len(entries)]
    chunks = []
    for a, b in zip(bounds, bounds[1:], strict=False):
        part = b"".join(bytes(e["bytes"]) for e in entries[a:b])
        chunks.append(chat_chunk(0, part.decode("utf-8", errors="ignore"), entries[a:b]))
    streamed = normalize(chunks)
    assert streamed.tokens == whole.tokens


@SETTINGS
@given(
    st.lists(
        st.dictionaries(st.text(max_size=5), st.integers() | st.text(max_size=8), max_size=3),
        min_size=1,
        max_size=5,
    )
)
def test_sse_text_round_trip(objs: list[dict]) -> None:
    sse = "".join(f"data: {json.dumps(o)}\n\n" for o in objs) + "data: [DONE]\n\n"
    assert load_payload(sse) == objs


@SETTINGS
@given(split_bytes())
def test_stream_text_split_along_token_bytes(case: tuple[str, list[bytes]]) -> None:
    text, pieces = case
    toks = [TokenLogprob(p.decode("utf-8", errors="replace"), p, -1.0) for p in pieces]
    parts = split_text(text, toks)
    assert "".join(parts) == text and len(parts) == len(toks)


@SETTINGS
@given(st.lists(st.integers(-3000, 0), min_size=3, max_size=12, unique=True), st.data())
def test_completions_rank_is_exact_or_unknown(hundredths: list[int], data: st.DataObject) -> None:
    """A ``{token: logprob}`` list holds the top k plus the sampled token when outside them:
    a derived rank must equal the true rank, and a token inside the top k (not last) gets one.
    (Logprobs are distinct multiples of 0.01: ranks among exact ties are not defined.)"""
    dist = [h / 100 for h in hundredths]
    order = sorted(range(len(dist)), key=lambda i: -dist[i])
    true_rank = {tok: r + 1 for r, tok in enumerate(order)}
    k = data.draw(st.integers(1, len(dist) - 1))
    chosen = data.draw(st.lists(st.integers(0, len(dist) - 1), min_size=1, max_size=4))
    tops = []
    for c in chosen:
        entry = {f"t{i}": dist[i] for i in order[:k]}
        entry[f"t{c}"] = dist[c]
        tops.append(entry)
    lp = {
        "tokens": [f"t{c}" for c in chosen],
        "token_logprobs": [dist[c] for c in chosen],
        "top_logprobs": tops,
    }
    toks, _ = read_parallel(lp, "logprobs", Ctx(provider="openai_completions"))
    for c, tok in zip(chosen, toks, strict=True):
        if tok.rank is not None:
            assert tok.rank == true_rank[c]
        if true_rank[c] < k:
            assert tok.rank == true_rank[c]
