"""A scripted stand-in for a paid OpenAI endpoint, shared by the remote-engine tests.

:class:`Scripted` is a real HTTP server on loopback answering POSTs with the documented shapes in
the order a test scripts them (:class:`Reply`); ``chat_ok`` and ``error_body`` build those
shapes, ``engine_for`` points a :class:`RemoteEngine` at the stand-in with a short backoff.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from logprobe.engines.remote import RemoteEngine

MSGS = [{"role": "user", "content": "Hi"}]


# ── the stand-in ─────────────────────────────────────────────────────────────────────────────


@dataclass
class Reply:
    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    sse: list[str] | None = None
    """Raw SSE data payloads, each sent as ``data: X`` + blank line."""


class Scripted:
    """Answers POSTs with the scripted replies in order (the last one repeats)."""

    def __init__(self) -> None:
        self.replies: list[Reply] = []
        self.requests: list[tuple[str, dict[str, str], Any]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                outer.requests.append((self.path, dict(self.headers), json.loads(raw or b"{}")))
                r = outer.replies.pop(0) if len(outer.replies) > 1 else outer.replies[0]
                if r.delay:
                    time.sleep(r.delay)
                self.send_response(r.status)
                for k, v in r.headers.items():
                    self.send_header(k, v)
                if r.sse is not None:
                    self.send_header("Content-Type", "text/event-stream")
                    self.end_headers()
                    for data in r.sse:
                        self.wfile.write(f"data: {data}\n\n".encode())
                        self.wfile.flush()
                    return
                payload = r.body if isinstance(r.body, bytes) else json.dumps(r.body).encode()
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def chat_ok(tokens: list[tuple[str, float]], top: int = 1) -> dict[str, Any]:
    # OpenAI chat.completion with logprobs.content entries (wire doc, OpenAI Chat Completions)
    entries = [
        {
            "token": t,
            "logprob": lp,
            "bytes": list(t.encode()),
            "top_logprobs": [{"token": t, "logprob": lp, "bytes": list(t.encode())}][:top],
        }
        for t, lp in tokens
    ]
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1,
        "model": "m",
        "choices": [
            {
                "index": 0,
                "finish_reason": "stop",
                "message": {"role": "assistant", "content": "".join(t for t, _ in tokens)},
                "logprobs": {"content": entries, "refusal": None},
            }
        ],
        "usage": {"prompt_tokens": 3, "completion_tokens": len(tokens), "total_tokens": 9},
    }


def error_body(
    message: str, param: str | None = None, type_: str = "invalid_request_error"
) -> dict[str, Any]:
    # OpenAI error object: always the four keys (wire doc, "Errors")
    return {"error": {"message": message, "type": type_, "param": param, "code": None}}


def engine_for(fake: Scripted, **kw: Any) -> RemoteEngine:
    kw.setdefault("backoff", 0.01)
    return RemoteEngine(fake.url, "m", **kw)
