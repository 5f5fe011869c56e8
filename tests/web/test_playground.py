"""The playground with the real embedded engine: tokens stream over SSE and show up live."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from web_support import LiveServer, screenshot

from logprobe.store import Store
from logprobe.web import create_ui_app


@pytest.fixture(scope="module")
def live(engine: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Store]]:
    store = Store.open(f"sqlite:///{tmp_path_factory.mktemp('play') / 'play.db'}")
    with LiveServer(create_ui_app(store, engine)) as server:
        yield f"{server.url}/ui/", store
    store.close()


def csrf(base: str) -> dict[str, str]:
    return {"X-CSRF-Token": httpx.get(base + "api/session").json()["csrf"]}


def read_sse(base: str, **params: object) -> list[tuple[str, dict[str, Any]]]:
    events = []
    with httpx.stream(
        "POST", base + "api/playground/generate", json=params, headers=csrf(base), timeout=120
    ) as r:
        assert r.status_code == 200, r.read()
        assert r.headers["content-type"].startswith("text/event-stream")
        for block in r.read().decode().split("\n\n"):
            if not block.strip():
                continue
            lines = dict(line.split(": ", 1) for line in block.split("\n"))
            events.append((lines["event"], json.loads(lines["data"])))
    return events


def test_stream_sends_tokens_then_done_and_saves_to_a_run(live: tuple[str, Store]) -> None:
    base, store = live
    events = read_sse(
        base,
        prompt="The capital of France is",
        max_tokens=6,
        temperature=0,
        top_logprobs=3,
        run="playground",
    )
    tokens = [d for e, d in events if e == "token"]
    kinds = [e for e, _ in events]
    assert kinds[-1] == "done" and set(kinds[:-1]) == {"token"}
    done = events[-1][1]
    assert done["n_tokens"] == len(tokens) == 6 and done["finish_reason"] == "length"
    assert tokens[0]["text"] == " Paris" and 0 < tokens[0]["prob"] <= 1
    assert all(len(t["alternatives"]) <= 3 for t in tokens)
    assert [t["index"] for t in tokens] == list(range(6))
    assert done["decision"]["decision"] in ("publish", "review", "reject")
    saved = store.response(done["response_id"])
    assert saved.prompt == "The capital of France is" and saved.run == "playground"
    assert [t.logprob for t in saved.tokens or ()] == pytest.approx([t["logprob"] for t in tokens])


def test_chat_mode_uses_the_chat_template(live: tuple[str, Store]) -> None:
    base, _ = live
    events = read_sse(base, prompt="Say hi", max_tokens=3, chat=True)
    assert events[-1][0] == "done" and events[-1][1]["n_tokens"] >= 1


@pytest.mark.parametrize(
    "params, param",
    [
        ({"top_logprobs": 999}, "top_logprobs"),
        ({"max_tokens": 0}, "max_tokens"),
        ({"temperature": 5}, "temperature"),
        ({"run": "bad\tname"}, "run"),
    ],
)
def test_bad_parameters_are_400_json(
    live: tuple[str, Store], params: dict[str, object], param: str
) -> None:
    base, _ = live
    r = httpx.post(
        base + "api/playground/generate",
        json={"prompt": "x", **params},
        headers=csrf(base),
        timeout=60,
    )
    assert r.status_code == 400 and r.json()["error"]["param"] == param


@pytest.mark.browser
def test_playground_page_shows_the_heatmap_growing(live: tuple[str, Store], page: Any) -> None:
    base, _ = live
    page.goto(base + "playground.html")
    page.fill("textarea[name=prompt]", "Once upon a time")
    page.fill("input[name=max_tokens]", "12")
    page.click("#generate")
    page.wait_for_selector("#live-heatmap .tok")
    page.wait_for_function(
        "document.getElementById('live-status').textContent.startsWith('done')", timeout=120_000
    )
    assert page.locator("#live-heatmap .tok").count() == 12
    assert page.locator("#live-decision .badge").count() == 1
    page.locator("#live-heatmap .tok").nth(1).hover()
    page.locator("#lp-tip").wait_for(state="visible")
    screenshot(page, "playground")


@pytest.mark.browser
def test_playground_page_reports_bad_input(live: tuple[str, Store], page: Any) -> None:
    base, _ = live
    page.goto(base + "playground.html")
    page.fill("input[name=top_logprobs]", "99")
    page.click("#generate")
    page.wait_for_selector("#live .error")
    assert "top_logprobs" in page.locator("#live .error").inner_text()


def test_stopping_the_client_cancels_cleanly(live: tuple[str, Store], engine: Any) -> None:
    """Leaving the stream after one token cancels the generation in the engine (its counter
    of cancelled sequences moves and it stops well short of max_tokens), and the engine goes
    on serving."""
    base, _ = live
    cancelled0 = engine.stats.get("cancelled_sequences", 0)
    generated0 = engine.stats.get("generated_tokens", 0)
    with httpx.stream(
        "POST",
        base + "api/playground/generate",
        timeout=120,
        headers=csrf(base),
        json={"prompt": "Count: 1, 2, 3,", "max_tokens": 400},
    ) as r:
        for line in r.iter_lines():
            if line.startswith("event: token"):
                break  # leave after the first token: the server closes the engine stream
    deadline = time.monotonic() + 30
    while engine.stats.get("cancelled_sequences", 0) == cancelled0:
        assert time.monotonic() < deadline, "the generation was not cancelled"
        time.sleep(0.02)
    assert engine.stats["generated_tokens"] - generated0 < 400
    events = read_sse(base, prompt="2 + 2 =", max_tokens=2)  # the engine still serves
    assert events[-1][0] == "done"


def test_viewer_without_an_engine_says_so(tmp_path: Path) -> None:
    with (
        Store.open(f"sqlite:///{tmp_path / 'x.db'}") as store,
        LiveServer(create_ui_app(store)) as server,
    ):
        assert httpx.get(f"{server.url}/ui/api/playground").json()["available"] is False
