"""The streaming chat clients of ``bench_server.py``: the fixed prompts, an httpx client that
parses every event as it arrives, and a raw-socket client that parses after the stream ended.

Both count completion tokens (one per ``logprobs.content`` entry, or per content delta with
logprobs off), the alternatives per token and the time to the first token.
"""

from __future__ import annotations

import json
import socket
import time
from dataclasses import dataclass, field
from typing import Any

import httpx

PROMPTS = [
    "Write a long story about a dragon who learns to bake bread.",
    "Explain in detail how a bicycle works, part by part.",
    "Describe a walk through a busy city market in the morning.",
    "Write a letter to a friend about a trip to the mountains.",
]


@dataclass
class StreamResult:
    tokens: int
    seconds: float
    ttft: float | None
    logprob_entries: int
    top_counts: list[int] = field(default_factory=list)
    broken: bool = False


def chat_body(model: str, prompt: str, max_tokens: int, top: int | None) -> dict[str, Any]:
    """A streaming, greedy chat request; ``top=None`` turns logprobs off."""
    body: dict[str, Any] = {
        "model": model,
        "messages": [{"role": "user", "content": prompt}],
        "max_tokens": max_tokens,
        "temperature": 0,
        "stream": True,
    }
    if top is not None:
        body |= {"logprobs": True, "top_logprobs": top}
    return body


def stream_chat(
    url: str, model: str, prompt: str, max_tokens: int, top: int | None = 20
) -> StreamResult:
    res = StreamResult(0, 0.0, None, 0)
    t0 = time.perf_counter()
    body = chat_body(model, prompt, max_tokens, top)
    with httpx.stream("POST", f"{url}/v1/chat/completions", json=body, timeout=600) as r:
        r.raise_for_status()
        try:
            for line in r.iter_lines():
                _count(line, res, t0)
        except httpx.HTTPError:  # the server cut the stream off: keep what arrived
            res.broken = True
    res.seconds = time.perf_counter() - t0
    return res


def stream_chat_raw(
    url: str, model: str, prompt: str, max_tokens: int, top: int | None = 20
) -> StreamResult:
    """:func:`stream_chat` with a client that costs almost no CPU while the stream runs: a raw
    socket that only collects bytes (and notes when the first token's event arrived); the
    events are parsed after the stream ended. On a 2-core machine a Python client's parsing
    (about 0.6 ms of CPU per token with 20 alternatives) shares the cores with the server it
    measures; both clients rank the servers the same way (docs/BENCHMARKS.md)."""
    data = json.dumps(chat_body(model, prompt, max_tokens, top)).encode()
    host, port = url.removeprefix("http://").split(":")
    res = StreamResult(0, 0.0, None, 0)
    raw = bytearray()
    events = 0
    first: float | None = None
    t0 = time.perf_counter()
    with socket.create_connection((host, int(port)), timeout=600) as sock:
        sock.sendall(
            b"POST /v1/chat/completions HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json"
            b"\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s"
            % (host.encode(), len(data), data)
        )
        while True:
            chunk = sock.recv(1 << 20)
            if not chunk:
                break
            raw += chunk
            if first is None:
                events += chunk.count(b"data:")
                if events >= 2:  # the first event carries the role only
                    first = time.perf_counter()
            if b"[DONE]" in raw[-64:]:
                break
    res.seconds = time.perf_counter() - t0
    for line in _dechunk(bytes(raw)).decode("utf-8", errors="replace").splitlines():
        _count(line, res, t0)
    res.ttft = None if first is None else first - t0
    return res


def _dechunk(raw: bytes) -> bytes:
    """The body of an HTTP/1.1 response (chunked transfer encoding or not)."""
    head, _, rest = raw.partition(b"\r\n\r\n")
    if b"chunked" not in head.lower():
        return rest
    out = bytearray()
    while rest:
        size_line, _, rest = rest.partition(b"\r\n")
        try:
            size = int(size_line.split(b";")[0], 16)
        except ValueError:
            break
        if size == 0:
            break
        out += rest[:size]
        rest = rest[size + 2 :]
    return bytes(out)


def _count(line: str, res: StreamResult, t0: float) -> None:
    if not line.startswith("data:") or line.strip() == "data: [DONE]":
        return
    chunk = json.loads(line[5:])
    if not chunk.get("choices"):
        return
    choice = chunk["choices"][0]
    content = (choice.get("delta") or {}).get("content")
    lp = (choice.get("logprobs") or {}).get("content") or []
    res.logprob_entries += len(lp)
    res.top_counts.extend(len(e.get("top_logprobs") or []) for e in lp)
    produced = len(lp) if lp else (1 if content else 0)
    if produced and res.ttft is None:
        res.ttft = time.perf_counter() - t0
    res.tokens += produced
