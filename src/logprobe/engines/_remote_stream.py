"""Streaming for the remote engine: SSE lines -> chunk JSON -> the normalizer's per-chunk
deltas -> :class:`StreamEvent` objects, one per token, as they arrive."""

from __future__ import annotations

import codecs
import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from ..errors import NoLogprobsError, ProviderError
from ..normalize import iter_sse, openai_chat, openai_completions
from ..normalize._build import Delta
from ..normalize._common import Ctx
from ..types import TokenLogprob
from .base import GenerationParams, StreamEvent

if TYPE_CHECKING:
    from .remote import RemoteEngine


class _Restart(Exception):
    """The server sent text without logprobs before any event was yielded: ask again."""


def stream_events(
    eng: RemoteEngine,
    route: str,
    body: dict[str, Any],
    p: GenerationParams,
    *,
    on_restart: Callable[[], None],
) -> Iterator[StreamEvent]:
    """Events of one streamed request; if the server streams text without logprobs for
    ``top_logprobs: 0`` before any event was yielded, ``on_restart()`` is called and the
    request is sent again asking for one alternative."""
    body = {k: v for k, v in body.items() if k not in ("echo", "prompt_logprobs")}
    try:
        yield from _attempt(eng, route, body, p, allow_restart=True)
    except _Restart:
        on_restart()
        body["top_logprobs" if "messages" in body else "logprobs"] = 1
        yield from _attempt(eng, route, body, p, allow_restart=False)


def _attempt(
    eng: RemoteEngine, route: str, body: dict[str, Any], p: GenerationParams, *, allow_restart: bool
) -> Iterator[StreamEvent]:
    chat = route.endswith("/chat/completions")
    ctx = Ctx(provider="openai_chat" if chat else "openai_completions", require_logprobs=p.logprobs)
    read = openai_chat.chunk_deltas if chat else openai_completions.chunk_deltas
    finished: set[int] = set()
    done = False
    yielded = False
    with eng.http.stream_lines(route, body) as lines:
        for n, ev in enumerate(iter_sse(lines)):
            if ev.data.strip() == "[DONE]":
                done = True
                break
            for d in read(_decode(ev.data, n, eng.http.url(route)), f"[{n}]", ctx):
                if p.logprobs and d.text and not d.has_logprobs:
                    if allow_restart and not yielded and not p.top_logprobs:
                        raise _Restart
                    raise NoLogprobsError(
                        f"{eng.base_url} streamed text without logprobs (chunk {n}); this "
                        "server may not support logprobs when streaming",
                        path=d.path,
                    )
                for event in delta_events(d, p.top_logprobs):
                    yielded = True
                    yield event
                if d.finish_reason is not None:
                    finished.add(d.index)
    if not done and len(finished) < p.n:
        raise ProviderError(
            f"{eng.http.url(route)} ended the stream before it was complete "
            f"({len(finished)} of {p.n} choices finished, no [DONE])"
        )


def _decode(data: str, n: int, url: str) -> Any:
    try:
        obj = json.loads(data)
    except json.JSONDecodeError as e:
        raise ProviderError(f"{url} sent invalid JSON in stream event {n}: {e.msg}") from None
    if isinstance(obj, Mapping) and "error" in obj:
        err = obj["error"]
        msg = err.get("message") if isinstance(err, Mapping) else err
        raise ProviderError(f"{url} reported an error mid-stream: {msg}")
    return obj


def delta_events(d: Delta, keep: int) -> Iterator[StreamEvent]:
    """One event per token of the delta (text split along the tokens' bytes), then the finish
    event when the delta ends its choice."""
    if d.tokens:
        texts = split_text(d.text, d.tokens)
        for tok, text in zip(d.tokens, texts, strict=True):
            if len(tok.top_logprobs) > keep:
                tok = replace(tok, top_logprobs=tok.top_logprobs[:keep])
            yield StreamEvent(d.index, tok, text)
    elif d.text:
        yield StreamEvent(d.index, None, d.text)
    if d.finish_reason is not None:
        yield StreamEvent(d.index, None, "", d.finish_reason)


def split_text(text: str, tokens: Sequence[TokenLogprob]) -> list[str]:
    """The part of ``text`` each token adds: decoded incrementally from the tokens' bytes when
    they rebuild ``text`` exactly, else all of it on the last token."""
    if len(tokens) == 1:
        return [text]
    if all(t.bytes is not None for t in tokens):
        dec = codecs.getincrementaldecoder("utf-8")(errors="replace")
        pieces = [dec.decode(t.bytes or b"") for t in tokens]
        pieces[-1] += dec.decode(b"", final=True)
        if "".join(pieces) == text:
            return pieces
    return [""] * (len(tokens) - 1) + [text]
