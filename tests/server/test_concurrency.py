"""Concurrent requests are served together; disconnects stop generation; a full queue is a 429."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import openai
import pytest

from .conftest import boot

QUESTIONS = [
    "Name three colours.",
    "What is the capital of Italy?",
    "Say something kind.",
    "List two animals.",
]


def ask(client: Any, model: str, question: str) -> Any:
    return client.chat.completions.create(
        model=model,
        messages=[{"role": "user", "content": question}],
        max_tokens=12,
        temperature=0,
        logprobs=True,
        top_logprobs=2,
    ).choices[0]


def test_concurrent_requests_match_requests_served_alone(
    server: Any, client: Any, model_name: str
) -> None:
    alone = [ask(client, model_name, q) for q in QUESTIONS]
    in_flight_seen: list[int] = []

    def watch() -> None:
        for _ in range(200):
            in_flight_seen.append(server.serving.stats.in_flight)
            time.sleep(0.01)

    with ThreadPoolExecutor(len(QUESTIONS) + 1) as pool:
        watcher = pool.submit(watch)
        together = list(pool.map(lambda q: ask(client, model_name, q), QUESTIONS))
        watcher.result()
    assert max(in_flight_seen) >= 2, "requests were not in flight together"
    for a, b in zip(alone, together, strict=True):
        assert a.message.content == b.message.content
        assert [e.logprob for e in a.logprobs.content] == [e.logprob for e in b.logprobs.content]


def test_client_disconnect_stops_generation(server: Any, model_name: str, engine: Any) -> None:
    eog = {str(t): -100 for t in engine.eog_ids}  # no natural end: only a disconnect stops it
    body = {
        "model": model_name,
        "messages": [{"role": "user", "content": "Tell a story."}],
        "max_tokens": 1500,
        "temperature": 0.8,
        "seed": 1,
        "stream": True,
        "logit_bias": eog,
    }
    before = engine.stats
    stats = server.serving.stats
    cancelled_before = stats.streams_cancelled
    with (
        httpx.Client(timeout=60) as http,
        http.stream("POST", f"{server.base_url}/chat/completions", json=body) as resp,
    ):
        assert resp.status_code == 200
        lines = 0
        for line in resp.iter_lines():
            lines += bool(line.startswith("data:"))
            if lines >= 5:
                break
    deadline = time.monotonic() + 20
    cancelled = before.get("cancelled_sequences", 0)
    while engine.stats.get("cancelled_sequences", 0) == cancelled and time.monotonic() < deadline:
        time.sleep(0.05)
    assert engine.stats.get("cancelled_sequences", 0) == cancelled + 1, "generation not cancelled"
    assert stats.in_flight == 0
    assert stats.streams_cancelled == cancelled_before + 1
    generated = engine.stats["generated_tokens"] - before.get("generated_tokens", 0)
    time.sleep(1.0)
    after = engine.stats["generated_tokens"] - before.get("generated_tokens", 0)
    assert after == generated, "the engine kept generating after the client left"
    assert generated < 300, f"generation ran on to {generated} tokens after the disconnect"


def test_full_queue_answers_429_with_retry_after(engine: Any, model_name: str) -> None:
    live = boot(engine, max_queue=1)
    eog = {str(t): -100 for t in engine.eog_ids}
    body = {
        "model": model_name,
        "messages": [{"role": "user", "content": "Tell a story."}],
        "max_tokens": 2000,
        "temperature": 0.8,
        "stream": True,
        "logit_bias": eog,
    }
    try:
        with httpx.Client(timeout=60) as http:
            with http.stream("POST", f"{live.base_url}/chat/completions", json=body) as resp:
                lines = resp.iter_lines()  # kept alive: dropping it would close the stream
                assert next(lines).startswith("data:")  # the stream holds the only slot now
                r = http.post(
                    f"{live.base_url}/completions",
                    json={"model": model_name, "prompt": "Hi", "max_tokens": 1},
                )
                assert r.status_code == 429
                assert r.headers["retry-after"] == "1"
                err = r.json()["error"]
                assert set(err) == {"message", "type", "param", "code"}
                assert err["code"] == "rate_limit_exceeded"
                with pytest.raises(openai.RateLimitError):
                    live.client().chat.completions.create(
                        model=model_name, messages=[{"role": "user", "content": "Hi"}]
                    )
                assert http.get(f"{live.url}/health").json()["rejected"] == 2
            deadline = time.monotonic() + 20
            while live.serving.stats.in_flight and time.monotonic() < deadline:
                time.sleep(0.05)
            ok = http.post(
                f"{live.base_url}/completions",
                json={"model": model_name, "prompt": "Hi", "max_tokens": 1},
            )
            assert ok.status_code == 200
    finally:
        live.stop()


def test_a_streamed_prompt_list_needs_no_thread_per_prompt(server: Any, model_name: str) -> None:
    """A streamed /v1/completions with many prompts streams every one of them to the end
    without a thread per prompt (it once started one per prompt, later one per running prompt):
    the server process's thread count stays bounded while 20 prompts stream."""
    import threading

    prompts = [f"Item {i}:" for i in range(20)]
    body = {
        "model": model_name,
        "prompt": prompts,
        "max_tokens": 3,
        "temperature": 0,
        "stream": True,
    }
    before = threading.active_count()
    most = before
    finished: set[int] = set()
    with httpx.stream("POST", f"{server.base_url}/completions", json=body, timeout=300) as r:
        assert r.status_code == 200
        for line in r.iter_lines():
            most = max(most, threading.active_count())
            if line.startswith("data: {"):
                import json

                for ch in json.loads(line[6:])["choices"]:
                    if ch.get("finish_reason"):
                        finished.add(ch["index"])
    assert finished == set(range(len(prompts)))
    assert most - before < 10, (before, most)
    assert not [t for t in threading.enumerate() if t.name.startswith("logprobe-stream")]
