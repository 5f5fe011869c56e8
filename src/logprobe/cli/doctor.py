"""``logprobe doctor``: what this installation runs on, and whether the embedded engine works here.

Everything that could crash (loading llama.cpp on an unknown CPU) runs in a subprocess, so a
crash becomes a readable verdict with the fix instead of a dead terminal.
"""

from __future__ import annotations

import json
import platform
from importlib import metadata
from typing import Annotated, Any

import typer

from ._output import print_json, stdout

_ENGINE_CHECK = r"""
import json, sys
from logprobe.engines.llamacpp import LlamaEngine
with LlamaEngine(sys.argv[1] if sys.argv[1] != "-" else None, n_threads=1, n_ctx=1024,
                 n_seq_max=2) as eng:
    c = eng.complete("The capital of France is", max_tokens=8, temperature=0, top_logprobs=3)
    toks = c.choices[0].tokens
    s = eng.score([t.id for t in toks], prompt="The capital of France is", top_logprobs=3)
    same = [t.logprob for t in toks[1:]] == [t.logprob for t in s.tokens[1:]]
    print(json.dumps({"ok": True, "text": c.text, "tokens": len(toks),
                      "generation_equals_score": same, "batch_invariant": eng.batch_invariant}))
"""


def versions() -> dict[str, str | None]:
    """Versions of logprobe, llama-cpp-python and the ggml/llama.cpp build it compiled."""
    out: dict[str, str | None] = {}
    for dist, key in (("logprobe", "logprobe"), ("llama-cpp-python", "llama_cpp_python")):
        try:
            out[key] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[key] = None
    try:
        from ..engines import _ggml

        out.update(_ggml.build_info())
    except Exception:  # pragma: no cover - a broken llama-cpp-python install
        out.update({"ggml_version": None, "ggml_commit": None})
    return out


def version_line() -> str:
    v = versions()
    ggml = v.get("ggml_version") or "?"
    if v.get("ggml_commit"):
        ggml += f" ({v['ggml_commit']})"
    return (
        f"logprobe {v.get('logprobe') or '?'}  llama-cpp-python "
        f"{v.get('llama_cpp_python') or 'not installed'}  ggml {ggml}"
    )


def _cpu() -> dict[str, Any]:
    name, flags = platform.processor() or platform.machine(), set()
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith("model name") and name in ("", platform.machine()):
                    name = line.split(":", 1)[1].strip()
                if line.startswith(("flags", "Features")):
                    flags = set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return {
        "model": name,
        "arch": platform.machine(),
        "amx": sorted(f for f in flags if f.startswith("amx")),
        "avx512": any(f.startswith("avx512") for f in flags),
    }


def _run(code: str, *args: str, timeout: float = 180.0) -> dict[str, Any]:
    from ..engines.portability import run_python

    p, failure = run_python(code, *args, timeout=timeout, who="the engine process")
    if p is None or failure is not None:
        return {"ok": False, "detail": failure}
    lines = p.stdout.strip().splitlines()
    if p.returncode == 0 and lines:
        try:
            return dict(json.loads(lines[-1]))
        except ValueError:
            pass
    err = (p.stderr.strip().splitlines() or lines or [f"exit code {p.returncode}"])[-1]
    return {"ok": False, "detail": err}


def diagnose(model: str | None, *, self_test: bool = True) -> dict[str, Any]:
    from ..engines import portability

    report: dict[str, Any] = {
        "versions": versions(),
        "python": platform.python_version(),
        "cpu": _cpu(),
    }
    try:
        from ..engines import _ggml
        from ..engines.llamacpp import default_model_path

        report["llama_cpp_features"] = _ggml.cpu_features()
        path = model or default_model_path()
    except Exception as e:  # a missing model package or library is a finding, not a crash
        report["error"] = str(e)
        return report
    report["model_path"] = path
    report["extra_buffers"] = portability.extra_buffers_wanted()
    if not self_test:
        return report
    report["engine"] = _run(_ENGINE_CHECK, model or "-")
    if report["cpu"]["amx"] or report["extra_buffers"]:
        # Would llama.cpp's fast path (AMX / repacked buffers) work here? Asked in a subprocess.
        report["extra_buffers_test"] = portability.self_test(
            path, extra_buffers=True, use_cache=False
        )
    return report


def _verdicts(r: dict[str, Any]) -> list[tuple[bool, str]]:
    out: list[tuple[bool, str]] = []
    if "error" in r:
        return [(False, r["error"])]
    eng = r.get("engine")
    if eng is not None:
        if eng.get("ok"):
            out.append(
                (True, f"embedded engine: generated {eng['tokens']} tokens ({eng['text']!r})")
            )
            out.append(
                (
                    bool(eng.get("generation_equals_score")),
                    "generation logprobs equal score() of the same text, bit for bit",
                )
            )
            out.append(
                (
                    bool(eng.get("batch_invariant")),
                    "batch-invariant kernels (ggml reference mode) are on",
                )
            )
        else:
            fix = ""
            if r.get("extra_buffers"):
                fix = " - fix: unset LOGPROBE_EXTRA_BUFFERS (extra buffers are off by default)"
            out.append((False, f"embedded engine failed: {eng.get('detail')}{fix}"))
    xb = r.get("extra_buffers_test")
    if xb is not None:
        state = "works" if xb.get("ok") else f"fails ({xb.get('detail')})"
        out.append(
            (
                True,
                f"llama.cpp extra buffers (AMX/repack) {state} on this CPU; logprobe "
                f"keeps them {'on' if r.get('extra_buffers') else 'off'}",
            )
        )
    return out


def doctor(
    model: Annotated[
        str | None,
        typer.Option("--model", "-m", help="GGUF file to check (default: the packaged model)."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
    no_self_test: Annotated[
        bool,
        typer.Option("--no-self-test", help="Skip the engine self-test (versions and CPU only)."),
    ] = False,
) -> None:
    """Versions, CPU features, model path and an engine self-test run in a subprocess."""
    r = diagnose(model, self_test=not no_self_test)
    checks = _verdicts(r)
    if as_json:
        r["checks"] = [{"ok": ok, "what": what} for ok, what in checks]
        print_json(r)
    else:
        out = stdout
        out.print(version_line(), markup=False, highlight=False)
        cpu = r["cpu"]
        out.print(
            f"python {r['python']}  cpu {cpu['model']} ({cpu['arch']})"
            + (f"  amx: {' '.join(cpu['amx'])}" if cpu["amx"] else ""),
            markup=False,
            highlight=False,
        )
        feats = r.get("llama_cpp_features") or {}
        on = [k for k, v in feats.items() if v]
        if on:
            out.print("llama.cpp sees: " + " ".join(on), markup=False, highlight=False)
        if "model_path" in r:
            out.print(f"model: {r['model_path']}", markup=False, highlight=False)
            out.print(
                "extra buffers: "
                + (
                    "on (LOGPROBE_EXTRA_BUFFERS)"
                    if r["extra_buffers"]
                    else "off (portable default)"
                ),
                markup=False,
                highlight=False,
            )
        for ok, what in checks:
            out.print(("ok    " if ok else "FAIL  ") + what, markup=False, highlight=False)
    if not all(ok for ok, _ in checks):
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command("doctor")(doctor)
