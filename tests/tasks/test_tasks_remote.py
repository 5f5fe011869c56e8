"""classify() through RemoteEngine: exact scoring against a real logprobe server (echo), and the
first-token approximation against a stand-in for OpenAI (a paid provider, so faked with its
documented response shapes) that refuses ``echo`` as OpenAI's current models do."""

from __future__ import annotations

import math
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from logprobe.engines.remote import RemoteEngine
from logprobe.errors import InvalidRequestError
from logprobe.tasks import classify, rerank

REVIEW = "An absolute delight from start to finish; I loved every minute."

# the fake provider's next-token distribution (natural logs), shared by both endpoints
TOP = [
    (" positive", math.log(0.6)),
    (" negative", math.log(0.2)),
    (" Positive", math.log(0.1)),
    (" neutral", math.log(0.05)),
    ("\n", math.log(0.05)),
]


class Live:
    """uvicorn in a thread on a loopback socket we bound ourselves."""

    def __init__(self, app: Any) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        cfg = uvicorn.Config(app, log_config=None, log_level="warning", lifespan="off")
        self.server = uvicorn.Server(cfg)
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True
        )

    def __enter__(self) -> Live:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            assert time.monotonic() < deadline and self.thread.is_alive(), "server did not start"
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
        self.sock.close()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"


def openai_like_app(seen: list[dict[str, Any]]) -> FastAPI:
    app = FastAPI()

    def error(msg: str) -> JSONResponse:
        return JSONResponse(
            status_code=400,
            content={
                "error": {
                    "message": msg,
                    "type": "invalid_request_error",
                    "param": "echo",
                    "code": None,
                }
            },
        )

    @app.post("/v1/completions")
    async def completions(request: Request) -> Any:
        body = await request.json()
        seen.append({"route": "completions", **body})
        if body.get("echo"):
            return error("echo is not supported with this model")
        k = int(body.get("logprobs") or 0)
        tok, lp = TOP[0]
        return {
            "id": "cmpl-1",
            "object": "text_completion",
            "created": 1,
            "model": body["model"],
            "choices": [
                {
                    "text": tok,
                    "index": 0,
                    "finish_reason": "length",
                    "logprobs": {
                        "tokens": [tok],
                        "token_logprobs": [lp],
                        "text_offset": [0],
                        "top_logprobs": [dict(TOP[:k])] if k else None,
                    },
                }
            ],
            "usage": {"prompt_tokens": 5, "completion_tokens": 1, "total_tokens": 6},
        }

    @app.post("/v1/chat/completions")
    async def chat(request: Request) -> Any:
        body = await request.json()
        seen.append({"route": "chat", **body})
        k = int(body.get("top_logprobs") or 0)
        content = [
            {
                "token": t.strip(),
                "logprob": lp,
                "bytes": list(t.strip().encode()),
                "top_logprobs": [
                    {"token": a.strip(), "logprob": b, "bytes": list(a.strip().encode())}
                    for a, b in TOP[:k]
                ],
            }
            for t, lp in TOP[:1]
        ]
        return {
            "id": "chatcmpl-1",
            "object": "chat.completion",
            "created": 1,
            "model": body["model"],
            "choices": [
                {
                    "index": 0,
                    "finish_reason": "length",
                    "message": {"role": "assistant", "content": "positive"},
                    "logprobs": {"content": content},
                }
            ],
            "usage": {"prompt_tokens": 9, "completion_tokens": 1, "total_tokens": 10},
        }

    return app


@pytest.fixture
def fake_openai() -> Iterator[tuple[Live, list[dict[str, Any]]]]:
    seen: list[dict[str, Any]] = []
    with Live(openai_like_app(seen)) as live:
        yield live, seen


def test_first_token_fallback_when_the_provider_has_no_echo(
    fake_openai: tuple[Live, list[dict[str, Any]]],
) -> None:
    live, seen = fake_openai
    with RemoteEngine(live.base_url, "gpt-like", max_retries=0) as eng:
        r = classify(eng, REVIEW, ["positive", "negative", "mixed"])
    assert r.method == "first_token" and r.approximate
    assert any("exact scoring unavailable" in n for n in r.notes)
    assert any("'mixed'" in n and "upper bound" in n for n in r.notes)
    # positive gets " positive" (0.6); " Positive" begins no label (case differs)
    raw = {"positive": 0.6, "negative": 0.2, "mixed": 0.05}  # mixed: smallest seen (bound)
    z = sum(raw.values())
    for label, p in raw.items():
        assert r.probs[label] == pytest.approx(p / z, rel=1e-6)
    assert any(s.get("echo") for s in seen)  # exact scoring was tried first
    assert r.to_dict()["approximate"] is True


def test_chat_messages_go_to_the_chat_endpoint(
    fake_openai: tuple[Live, list[dict[str, Any]]],
) -> None:
    live, seen = fake_openai
    msgs = [{"role": "user", "content": f"Positive or negative? {REVIEW}"}]
    with RemoteEngine(live.base_url, "gpt-like", max_retries=0) as eng:
        r = classify(eng, msgs, ["positive", "negative"])
    assert r.method == "first_token"
    assert r.probs["positive"] == pytest.approx(0.6 / 0.8)
    chat_calls = [s for s in seen if s["route"] == "chat"]
    assert chat_calls and chat_calls[-1]["messages"] == msgs
    assert chat_calls[-1]["max_tokens"] == 1 and chat_calls[-1]["top_logprobs"] >= 5


def test_scoring_tasks_refuse_chat_prompts_a_server_must_render(
    fake_openai: tuple[Live, list[dict[str, Any]]],
) -> None:
    live, _ = fake_openai
    msgs = [{"role": "user", "content": "Which is better?"}]
    with RemoteEngine(live.base_url, "gpt-like", max_retries=0) as eng:
        with pytest.raises(InvalidRequestError, match="chat template") as e:
            rerank(eng, msgs, ["a", "b"])
        assert e.value.param == "messages"
        with pytest.raises(InvalidRequestError, match="exact scoring of a chat prompt"):
            classify(eng, msgs, ["a", "b"], method="exact")


def test_exact_scoring_through_a_real_logprobe_server(engine: Any) -> None:
    server = pytest.importorskip("logprobe.server")
    with (
        Live(server.create_app(engine)) as live,
        RemoteEngine(live.base_url, engine.model_name, max_retries=0) as remote,
    ):
        r = classify(remote, REVIEW, ["positive", "negative", "so so"])
    local = classify(engine, REVIEW, ["positive", "negative", "so so"])
    assert r.method == "exact" and not r.approximate
    for label in local.probs:
        assert r.probs[label] == pytest.approx(local.probs[label], abs=1e-3)
