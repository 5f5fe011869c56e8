"""With a store and a run, every served request lands in the run store, streamed ones too."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from logprobe.store import Store

from .conftest import LiveServer, boot

MSG = [{"role": "user", "content": "Name three colours."}]


@pytest.fixture
def recorded(engine: Any) -> Iterator[tuple[LiveServer, Store]]:
    store = Store.open()  # under this test's own LOGPROBE_HOME
    live = boot(engine, store=store, run="served")
    yield live, store
    live.stop()
    store.close()


def wait_for(store: Store, run: str, n: int) -> None:
    """Recording happens after the response went out: give it a moment."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            if store.count_responses(run) >= n:
                return
        except Exception:  # the run is created by the first record
            pass
        time.sleep(0.05)
    raise AssertionError(f"run {run!r} did not reach {n} responses")


def test_every_endpoint_is_recorded(recorded: tuple[LiveServer, Store], model_name: str) -> None:
    live, store = recorded
    client = live.client()
    chat = client.chat.completions.create(
        model=model_name, messages=MSG, max_tokens=5, temperature=0, logprobs=True, top_logprobs=2
    )
    chunks = list(
        client.chat.completions.create(
            model=model_name,
            messages=MSG,
            max_tokens=5,
            temperature=0,
            logprobs=True,
            top_logprobs=2,
            stream=True,
        )
    )
    batch = client.completions.create(
        model=model_name, prompt=["Hi", "Bye"], max_tokens=3, temperature=0, logprobs=1
    )
    resp = client.responses.create(
        model=model_name,
        input="Hi",
        max_output_tokens=3,
        temperature=0,
        include=["message.output_text.logprobs"],
    )
    wait_for(store, "served", 5)
    rows = store.responses("served", with_tokens=True)
    by = {
        e: [r for r in rows if r.meta["endpoint"] == e]
        for e in ("chat.completions", "completions", "responses")
    }
    assert [len(v) for v in by.values()] == [2, 2, 1]
    streamed_text = "".join(c.choices[0].delta.content or "" for c in chunks)
    for row in by["chat.completions"]:  # the plain and the streamed request (same at T=0)
        assert row.text == chat.choices[0].message.content == streamed_text
        assert row.messages == MSG
        assert [t.logprob for t in row.tokens] == pytest.approx(
            [e.logprob for e in chat.choices[0].logprobs.content], abs=1e-5
        )
        assert [len(t.top_logprobs) for t in row.tokens] == [2] * 5
    comp = sorted(by["completions"], key=lambda r: r.prompt)
    assert [r.prompt for r in comp] == ["Bye", "Hi"]
    assert [r.text for r in comp] == [batch.choices[1].text, batch.choices[0].text]
    assert by["responses"][0].text == resp.output_text
    assert all(r.latency_ms is not None and r.latency_ms > 0 for r in rows)


def test_viewer_is_mounted_under_ui(recorded: tuple[LiveServer, Store]) -> None:
    live, _ = recorded
    assert live.app.state.web_mounted
    r = httpx.get(f"{live.url}/ui/", timeout=30)
    assert r.status_code == 200 and "html" in r.headers["content-type"]


def test_no_viewer_without_a_store(server: LiveServer) -> None:
    assert not server.app.state.web_mounted
    assert httpx.get(f"{server.url}/ui/", timeout=30).status_code == 404
