"""One rule for loading a model, wherever logprobe loads one (engine, tests, benchmarks).

**llama.cpp's extra buffer types are off by default.** ``llama_model_params.use_extra_bufts``
lets ggml move weights into CPU-specific layouts: AMX tiles on Intel Sapphire Rapids and later,
and "repacked" interleaved blocks (``CPU_REPACK``) elsewhere. Three reasons to leave them off:

1. The AMX path crashes (``Illegal instruction`` in ``tilezero``, upstream llama.cpp PR 26954 is
   still open) on the most common cloud CPUs, for plain ``llama_cpp.Llama`` as well.
2. Repacked weights are multiplied by different kernels for small and large batches (a GEMV for
   fewer than 4 rows, a GEMM beyond), so a token's logits would depend on how many other tokens
   share its batch: the batch invariance of ``docs/ENGINE.md`` needs one kernel per row.
3. For the default model it costs nothing: its Q4_1 and Q8_0 tensors have no repacked layout
   (llama.cpp logs "cannot be used with preferred buffer type CPU_REPACK" for all of them).

The opt-in for the day upstream is fixed, or for a Q4_0/Q4_K model where repacking is faster:
``LlamaEngine(extra_buffers=True)`` or ``LOGPROBE_EXTRA_BUFFERS=1``. An opt-in is guarded by a
self-test in a subprocess (one decode of a 64-token batch), run once per CPU, llama.cpp build
and model and cached under ``$LOGPROBE_HOME/cache``: on a CPU where it crashes, the engine
refuses with the reason instead of taking the process down.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import platform
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .._paths import logprobe_home
from ..errors import EngineError

EXTRA_BUFFERS_ENV = "LOGPROBE_EXTRA_BUFFERS"

__all__ = [
    "EXTRA_BUFFERS_ENV",
    "apply_model_params",
    "extra_buffers_wanted",
    "reference_llama",
    "self_test",
]


def extra_buffers_wanted(explicit: bool | None = None) -> bool:
    """The rule: an explicit argument wins, then ``$LOGPROBE_EXTRA_BUFFERS``; default off."""
    if explicit is not None:
        return bool(explicit)
    return os.environ.get(EXTRA_BUFFERS_ENV, "").strip().lower() in {"1", "true", "yes", "on"}


def apply_model_params(mp: Any, *, extra_buffers: bool = False) -> Any:
    """Set ``llama_model_params`` the portable way (CPU only; extra buffers per the rule)."""
    mp.n_gpu_layers = 0
    if hasattr(mp, "use_extra_bufts"):
        mp.use_extra_bufts = bool(extra_buffers)
    return mp


@contextlib.contextmanager
def _portable_defaults(extra_buffers: bool) -> Iterator[None]:
    """``llama_cpp.Llama`` builds its model params from ``llama_model_default_params()``; apply
    the rule to what that returns while a ``Llama`` is being constructed."""
    import llama_cpp.llama_cpp as low

    orig = low.llama_model_default_params

    def patched() -> Any:
        return apply_model_params(orig(), extra_buffers=extra_buffers)

    low.llama_model_default_params = patched
    try:
        yield
    finally:
        low.llama_model_default_params = orig


def reference_llama(model_path: str, *, extra_buffers: bool | None = None, **kwargs: Any) -> Any:
    """A ``llama_cpp.Llama`` (the high-level class, used as a peer and an oracle) loaded by the
    same rule as the engine."""
    import llama_cpp

    want = extra_buffers_wanted(extra_buffers)
    if want:
        self_test(model_path, extra_buffers=True, raise_on_failure=True)
    kwargs.setdefault("n_gpu_layers", 0)
    kwargs.setdefault("verbose", False)
    with _portable_defaults(want):
        return llama_cpp.Llama(model_path=model_path, **kwargs)


# --- self-test -------------------------------------------------------------------------------

_PROBE = r"""
import sys
import llama_cpp as ll
path, extra = sys.argv[1], sys.argv[2] == "1"
ll.llama_backend_init()
cb = ll.llama_log_callback(lambda level, text, data: None)
ll.llama_log_set(cb, None)
mp = ll.llama_model_default_params()
mp.n_gpu_layers = 0
mp.use_extra_bufts = extra
model = ll.llama_model_load_from_file(path.encode(), mp)
if not model:
    print("load-failed"); sys.exit(3)
cp = ll.llama_context_default_params()
cp.n_ctx = 256; cp.n_batch = 64; cp.n_ubatch = 64; cp.n_threads = 1; cp.n_threads_batch = 1
ctx = ll.llama_init_from_model(model, cp)
batch = ll.llama_batch_init(64, 0, 1)
n_vocab = ll.llama_vocab_n_tokens(ll.llama_model_get_vocab(model))
for i in range(64):
    batch.token[i] = (i * 7919) % n_vocab
    batch.pos[i] = i
    batch.n_seq_id[i] = 1
    batch.seq_id[i][0] = 0
    batch.logits[i] = i == 63
batch.n_tokens = 64
rc = ll.llama_decode(ctx, batch)
print("ok" if rc == 0 else f"decode-{rc}")
sys.exit(0 if rc == 0 else 4)
"""


def _verdict_file(model_path: str, extra_buffers: bool) -> Path:
    from . import _ggml

    try:
        st = os.stat(model_path)
        model_key = f"{os.path.abspath(model_path)}|{st.st_size}|{st.st_mtime_ns}"
    except OSError:
        model_key = model_path
    build = _ggml.build_info()
    cpu = _cpu_flags()
    key = json.dumps([model_key, extra_buffers, build, cpu, platform.machine()], sort_keys=True)
    digest = hashlib.sha256(key.encode()).hexdigest()[:24]
    return logprobe_home() / "cache" / f"selftest-{digest}.json"


def _cpu_flags() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith(("flags", "Features")):
                    return " ".join(sorted(line.split(":", 1)[1].split()))
    except OSError:
        pass
    return platform.processor()


def run_python(
    code: str, *args: str, timeout: float, who: str
) -> tuple[subprocess.CompletedProcess[str] | None, str | None]:
    """Run ``python -c code args`` in a subprocess (where a crash cannot take this process
    down); returns the finished process and, if it timed out or died of a signal (SIGILL from
    an unsupported instruction), a one-line reason naming ``who``."""
    import signal

    try:
        proc = subprocess.run(
            [sys.executable, "-c", code, *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return None, f"no answer within {timeout:.0f} s"
    if proc.returncode < 0:
        try:
            name = signal.Signals(-proc.returncode).name
        except ValueError:
            name = f"signal {-proc.returncode}"
        return proc, f"{who} died with {name}"
    return proc, None


def self_test(
    model_path: str,
    *,
    extra_buffers: bool,
    timeout: float = 120.0,
    use_cache: bool = True,
    raise_on_failure: bool = False,
) -> dict[str, Any]:
    """Load ``model_path`` and decode one 64-token batch in a subprocess; returns
    ``{"ok": bool, "detail": str, "cached": bool}``. A crash (a signal such as SIGILL) becomes a
    verdict, not a dead process. The verdict is cached per CPU, build, model and setting."""
    cache = _verdict_file(model_path, extra_buffers)
    if use_cache:
        try:
            verdict = json.loads(cache.read_text())
            if isinstance(verdict, dict) and "ok" in verdict:
                verdict["cached"] = True
                return _maybe_raise(verdict, raise_on_failure)
        except (OSError, ValueError):
            pass
    proc, failure = run_python(
        _PROBE, model_path, "1" if extra_buffers else "0", timeout=timeout, who="the model process"
    )
    ok = proc is not None and proc.returncode == 0
    if proc is None or failure is not None:
        detail = str(failure)
    else:
        detail = (proc.stdout.strip().splitlines() or [f"exit {proc.returncode}"])[-1]
    verdict = {"ok": ok, "detail": detail, "extra_buffers": extra_buffers, "cached": False}
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(verdict))
        os.replace(tmp, cache)
    except OSError:
        pass
    return _maybe_raise(verdict, raise_on_failure)


def _maybe_raise(verdict: dict[str, Any], raise_on_failure: bool) -> dict[str, Any]:
    if raise_on_failure and not verdict.get("ok"):
        raise EngineError(
            "llama.cpp's extra buffer types fail on this CPU ("
            + str(verdict.get("detail"))
            + "); unset "
            + EXTRA_BUFFERS_ENV
            + " or pass extra_buffers=False (the default)"
        )
    return verdict


def run_module(module: str, argv: list[str]) -> None:
    """Run ``python -m module argv...`` with the rule applied to every model it loads (how the
    benchmarks start ``llama_cpp.server`` as a peer)."""
    import runpy

    sys.argv = [module, *argv]
    with _portable_defaults(extra_buffers_wanted()):
        runpy.run_module(module, run_name="__main__", alter_sys=True)


if __name__ == "__main__":  # python -m logprobe.engines.portability MODULE [ARGS...]
    if len(sys.argv) < 2:
        raise SystemExit("usage: python -m logprobe.engines.portability MODULE [ARGS...]")
    run_module(sys.argv[1], sys.argv[2:])
