"""The portability rule (no llama.cpp extra buffer types unless asked), its self-test, and
``logprobe doctor`` / ``logprobe --version``."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import llama_cpp
import llama_cpp.llama_cpp as low
import pytest

from logprobe.cli import doctor
from logprobe.cli.main import main
from logprobe.engines import portability
from logprobe.engines.llamacpp import LlamaEngine, default_model_path
from logprobe.errors import EngineError

EXE = Path(sys.executable).with_name("logprobe")


def _recording_loader(monkeypatch: pytest.MonkeyPatch, module: Any) -> list[bool]:
    seen: list[bool] = []
    real = module.llama_model_load_from_file

    def load(path: bytes, params: Any) -> Any:
        seen.append(bool(params.use_extra_bufts))
        return real(path, params)

    monkeypatch.setattr(module, "llama_model_load_from_file", load)
    return seen


def test_the_engine_loads_without_extra_buffers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(portability.EXTRA_BUFFERS_ENV, raising=False)
    seen = _recording_loader(monkeypatch, llama_cpp)
    with LlamaEngine(n_threads=1, n_ctx=256, n_seq_max=1) as eng:
        assert eng.extra_buffers is False
        assert eng.complete("Hi", max_tokens=2, temperature=0).choice.tokens
    assert seen == [False]


def test_the_reference_llama_loads_by_the_same_rule(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(portability.EXTRA_BUFFERS_ENV, raising=False)
    seen = _recording_loader(monkeypatch, low)
    original = low.llama_model_default_params
    lcp = portability.reference_llama(default_model_path(), n_ctx=256, n_threads=1)
    try:
        assert seen == [False]
        assert low.llama_model_default_params is original  # the patch does not leak
        assert original().use_extra_bufts is True  # llama.cpp's own default is untouched
    finally:
        lcp.close()


def test_the_rule_and_its_opt_in(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(portability.EXTRA_BUFFERS_ENV, raising=False)
    assert portability.extra_buffers_wanted() is False
    monkeypatch.setenv(portability.EXTRA_BUFFERS_ENV, "1")
    assert portability.extra_buffers_wanted() is True
    assert portability.extra_buffers_wanted(False) is False  # an explicit argument wins
    mp = portability.apply_model_params(llama_cpp.llama_model_default_params())
    assert mp.use_extra_bufts is False and mp.n_gpu_layers == 0


def test_opting_in_runs_a_cached_self_test_first() -> None:
    """On a CPU where the extra buffers work the engine uses them; where the self-test crashes
    (AMX machines today) the engine refuses with the reason instead of dying."""
    path = default_model_path()
    first = portability.self_test(path, extra_buffers=True)
    again = portability.self_test(path, extra_buffers=True)
    assert isinstance(first["ok"], bool) and first["detail"]
    assert again["cached"] is True and again["ok"] == first["ok"]
    if first["ok"]:
        with LlamaEngine(n_threads=1, n_ctx=256, n_seq_max=1, extra_buffers=True) as eng:
            assert eng.extra_buffers is True
    else:
        with pytest.raises(EngineError, match="extra buffer types fail on this CPU"):
            LlamaEngine(n_threads=1, n_ctx=256, n_seq_max=1, extra_buffers=True)
    plain = portability.self_test(path, extra_buffers=False, use_cache=False)
    assert plain["ok"] is True and plain["cached"] is False


def test_a_crash_in_the_checked_process_becomes_a_verdict() -> None:
    code = f"import os, signal; os.kill(os.getpid(), signal.{signal.SIGILL.name})"
    verdict = doctor._run(code)
    assert verdict == {"ok": False, "detail": "the engine process died with SIGILL"}


def test_version_flag(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--version"]) == 0
    line = capsys.readouterr().out.strip()
    assert line.startswith("logprobe ") and "llama-cpp-python 0.3" in line and "ggml " in line


@pytest.mark.slow
def test_doctor_reports_a_working_engine() -> None:
    p = subprocess.run(
        [str(EXE), "doctor", "--json"], capture_output=True, text=True, timeout=600, check=False
    )
    assert p.returncode == 0, p.stdout + p.stderr
    report = json.loads(p.stdout)
    assert report["versions"]["llama_cpp_python"].startswith("0.3")
    assert report["model_path"] == default_model_path()
    assert report["engine"]["ok"] is True
    assert report["engine"]["generation_equals_score"] is True
    assert report["engine"]["batch_invariant"] is True
    assert report["llama_cpp_features"]  # what the build uses on this CPU, e.g. AVX2
    assert all(c["ok"] for c in report["checks"])
    human = subprocess.run(
        [str(EXE), "doctor"], capture_output=True, text=True, timeout=600, check=False
    )
    assert human.returncode == 0 and "batch-invariant" in human.stdout
    assert "Traceback" not in human.stderr


def test_doctor_with_a_missing_model_is_one_line_and_exit_1(tmp_path: Path) -> None:
    p = subprocess.run(
        [str(EXE), "doctor", "--model", str(tmp_path / "none.gguf")],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert p.returncode == 1
    assert "FAIL" in p.stdout and "Traceback" not in p.stdout + p.stderr
