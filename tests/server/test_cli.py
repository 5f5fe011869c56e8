"""``logprobe serve``: options, clear one-line errors, and a real subprocess serving requests."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import openai
import pytest

from logprobe.cli.main import main

LOGPROBE = Path(sys.executable).with_name("logprobe")


def test_help_lists_options(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve", "--help"]) == 0
    out = capsys.readouterr().out
    for opt in (
        "--model",
        "--host",
        "--port",
        "--api-key",
        "--max-logprobs",
        "--max-queue",
        "--log",
    ):
        assert opt in out


def test_missing_model_file_is_one_line(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["serve", "--model", str(tmp_path / "nope.gguf")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: model file not found") and "\n" not in err


def test_port_in_use_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert main(["serve", "--port", str(port)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"error: cannot listen on 127.0.0.1:{port}")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.slow
def test_serve_subprocess_answers_openai_client(tmp_path: Path) -> None:
    port = _free_port()
    env = {**os.environ, "LOGPROBE_API_KEY": "k1"}
    proc = subprocess.Popen(
        [str(LOGPROBE), "serve", "--port", str(port), "--threads", "2", "--log", "served"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert proc.poll() is None, proc.communicate()[1]
            assert time.monotonic() < deadline, "server did not come up"
            time.sleep(0.3)
        client = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="k1", max_retries=0)
        model = client.models.list().data[0].id
        r = client.chat.completions.create(
            model=model,
            max_tokens=3,
            temperature=0,
            logprobs=True,
            top_logprobs=2,
            messages=[{"role": "user", "content": "Hi"}],
        )
        assert len(r.choices[0].logprobs.content) == 3
        with pytest.raises(openai.AuthenticationError):
            openai.OpenAI(
                base_url=f"http://127.0.0.1:{port}/v1", api_key="k2", max_retries=0
            ).models.list()
        client.close()
    finally:
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
    assert "Traceback" not in err
    from logprobe.store.store import Store

    with Store.open() as store:  # --log recorded the request into the run store
        responses = store.responses("served")
        assert len(responses) == 1
