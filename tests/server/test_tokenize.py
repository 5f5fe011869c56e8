"""vLLM-style ``/tokenize`` and ``/detokenize`` on the real server: the ids they give are the ids
generation sees (checked against the usage the completion endpoints report)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from logprobe.engines.remote import RemoteEngine

from .conftest import boot
from .test_errors import assert_error

MSGS = [
    {"role": "system", "content": "Answer briefly."},
    {"role": "user", "content": "Name a colour 🎨 in 日本語."},
]


def test_tokenize_prompt_matches_engine_and_completion_usage(
    http: httpx.Client, client: Any, engine: Any
) -> None:
    prompt = "Tokenize me: café, 日本語 and 🧪."
    r = http.post("/tokenize", json={"prompt": prompt, "return_token_strs": True})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["tokens"] == engine.tokenize(prompt, add_bos=True)
    assert body["count"] == len(body["tokens"])
    assert body["max_model_len"] == engine.n_ctx_seq
    raw = b"".join(engine.token_bytes(t) for t in body["tokens"])
    assert raw.decode("utf-8") == prompt  # the ids spell the prompt exactly
    assert len(body["token_strs"]) == body["count"]
    comp = client.completions.create(model=engine.model_name, prompt=prompt, max_tokens=1)
    assert comp.usage.prompt_tokens == body["count"]


def test_tokenize_messages_counts_what_chat_uses(
    http: httpx.Client, client: Any, engine: Any
) -> None:
    r = http.post("/tokenize", json={"messages": MSGS})
    assert r.status_code == 200, r.text
    ids = r.json()["tokens"]
    chat = client.chat.completions.create(model=engine.model_name, messages=MSGS, max_tokens=1)
    assert chat.usage.prompt_tokens == len(ids)
    im_start = engine.tokenize("<|im_start|>", special=True)
    assert len(im_start) == 1 and im_start[0] in ids  # special tokens parsed, not spelled out
    assert im_start[0] in engine.special_token_ids
    no_gen = http.post("/tokenize", json={"messages": MSGS, "add_generation_prompt": False})
    assert no_gen.json()["count"] < len(ids)


def test_detokenize_round_trip(http: httpx.Client) -> None:
    text = "Round trip: naïve café ☕ 東京"
    ids = http.post("/tokenize", json={"prompt": text, "add_special_tokens": False}).json()
    back = http.post("/detokenize", json={"tokens": ids["tokens"]})
    assert back.status_code == 200
    assert back.json() == {"prompt": text}


@pytest.mark.parametrize(
    ("path", "body", "status", "param"),
    [
        (
            "/tokenize",
            {"prompt": "x", "messages": [{"role": "user", "content": "x"}]},
            400,
            "messages",
        ),
        ("/tokenize", {}, 400, "prompt"),
        ("/tokenize", {"prompt": 3}, 400, "prompt"),
        ("/tokenize", {"prompt": "x", "model": "no-such-model"}, 404, "model"),
        ("/detokenize", {"tokens": [1, 10**9]}, 400, "tokens"),
        ("/detokenize", {"tokens": "abc"}, 400, "tokens"),
    ],
)
def test_tokenize_errors(
    http: httpx.Client, path: str, body: dict[str, Any], status: int, param: str
) -> None:
    assert_error(http.post(path, json=body), status, param)


def test_tokenize_needs_the_api_key(engine: Any) -> None:
    live = boot(engine, api_key="sekret")
    try:
        assert_error(httpx.post(f"{live.url}/tokenize", json={"prompt": "x"}), 401, None)
        ok = httpx.post(
            f"{live.url}/tokenize", json={"prompt": "x"}, headers={"Authorization": "Bearer sekret"}
        )
        assert ok.status_code == 200 and ok.json()["count"] >= 1
    finally:
        live.stop()


def test_remote_engine_tokenizes_through_the_server(server: Any, engine: Any) -> None:
    text = "The remote engine finds /tokenize on its own."
    with RemoteEngine(server.base_url, engine.model_name, max_retries=0) as remote:
        assert remote.tokenize(text) == engine.tokenize(text)
        assert remote.quirks.tokenize_route == "vllm"
