"""The streaming fast path renders chat chunks as text (cached token fragments); it must be
byte-for-byte what the generic dict-and-dumps path gives, for any token, number and text."""

from __future__ import annotations

import math

from hypothesis import given, settings
from hypothesis import strategies as st

from logprobe.server.render import CHAT_JSON, ChatEntryJSON, FrameWriter, chat_logprobs, dumps
from logprobe.types import Alternative, TokenLogprob

logprob = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0.0, -0.0, -1e-300, -9999.0, -10000.0, -math.inf, float("nan")]),
)
raw = st.one_of(st.none(), st.binary(max_size=6))
text = st.text(max_size=6)
alternative = st.builds(Alternative, text, raw, logprob, st.integers(0, 50000))
token = st.builds(
    TokenLogprob,
    text,
    raw,
    logprob,
    st.integers(0, 50000),
    st.integers(1, 100),
    st.lists(alternative, max_size=5).map(tuple),
)
HEAD = {
    "id": "chatcmpl-1",
    "object": "chat.completion.chunk",
    "created": 1,
    "model": "m\u00e9",
    "system_fingerprint": None,
}


@settings(max_examples=300, deadline=None)
@given(tok=token)
def test_entry_json_equals_dumps(tok: TokenLogprob) -> None:
    assert CHAT_JSON.logprobs(tok) == dumps(chat_logprobs([tok]))
    assert ChatEntryJSON().logprobs(tok) == CHAT_JSON.logprobs(tok)  # cold cache, same text


@settings(max_examples=300, deadline=None)
@given(
    index=st.integers(0, 8),
    content=st.one_of(st.none(), text),
    tok=st.one_of(st.none(), token),
    finish=st.sampled_from([None, "stop", "length"]),
    usage=st.booleans(),
    empty_head=st.booleans(),
)
def test_chat_delta_equals_chunk(
    index: int,
    content: str | None,
    tok: TokenLogprob | None,
    finish: str | None,
    usage: bool,
    empty_head: bool,
) -> None:
    out = FrameWriter({} if empty_head else HEAD, include_usage=usage)
    want = out.chunk(
        [
            {
                "index": index,
                "delta": {} if content is None else {"content": content},
                "logprobs": None if tok is None else chat_logprobs([tok]),
                "finish_reason": finish,
            }
        ]
    )
    got = out.chat_delta(index, content, None if tok is None else CHAT_JSON.logprobs(tok), finish)
    assert got == want
    assert out.chat_delta(0, "x", None, None) == out.chat_delta(0, "x", None, None)  # cached head


def test_the_cache_stays_bounded() -> None:
    r = ChatEntryJSON()
    r.MAX_CACHED = 4
    for i in range(10):
        tok = TokenLogprob(f"t{i}", f"t{i}".encode(), -1.0, i)
        assert r.logprobs(tok) == dumps(chat_logprobs([tok]))
    assert len(r._parts) <= 4
