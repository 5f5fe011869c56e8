"""The ggml libraries that ``llama-cpp-python`` ships, for what llama.cpp's C API does not expose.

Two things: the build's identity (ggml version and commit, the CPU features ggml sees), and the
CPU backend's *reference mode* (``ggml_backend_cpu_set_use_ref``), which the engine needs for
batch invariance (see ``docs/ENGINE.md``). llama.cpp creates its CPU backend inside the context
and offers no accessor for it, so :func:`context_cpu_backend` finds the pointer in the context
object: a word that points to a struct whose first field points to the CPU backend's GUID bytes.
Every read goes through ``/proc/self/mem`` (an unmapped address is an ``OSError`` there, never a
crash), and the candidate is confirmed by ggml's own ``ggml_backend_is_cpu`` before use. When any
of this is unavailable the functions return ``None`` and the engine says so; nothing is guessed.
"""

from __future__ import annotations

import ctypes
import functools
import os
import re
from pathlib import Path
from typing import Any

_SCAN_BYTES = 8192
"""How much of the ``llama_context`` object is searched for the CPU backend pointer (the field
sits at ~0.7 KB in llama.cpp of llama-cpp-python 0.3.36)."""


def _lib_dir() -> Path | None:
    try:
        import llama_cpp
    except ImportError:  # pragma: no cover - a broken install
        return None
    d = Path(llama_cpp.__file__).parent / "lib"
    return d if d.is_dir() else None


@functools.cache
def _load(stem: str) -> Any:
    """The ggml library ``stem`` as llama.cpp loaded it (its SONAME first, so that both share one
    copy of the library's statics), or ``None``."""
    d = _lib_dir()
    if d is None:
        return None
    names = sorted((p.name for p in d.glob(f"{stem}.*")), key=len)
    for name in [n for n in names if n.endswith(".so.0")] + names + [f"{stem}.dylib"]:
        path = d / name
        if path.exists():
            try:
                return ctypes.CDLL(str(path))
            except OSError:
                continue
    return None


def build_info() -> dict[str, str | None]:
    """ggml's version and commit as compiled into the installed llama-cpp-python."""
    base = _load("libggml-base")
    out: dict[str, str | None] = {"ggml_version": None, "ggml_commit": None}
    if base is None:
        return out
    for key in ("ggml_version", "ggml_commit"):
        fn = getattr(base, key, None)
        if fn is not None:
            fn.restype = ctypes.c_char_p
            raw = fn()
            out[key] = raw.decode() if raw else None
    return out


def system_info() -> str:
    """llama.cpp's own one-line report of the CPU features its build uses."""
    import llama_cpp

    raw = llama_cpp.llama_print_system_info()
    return raw.decode("utf-8", "replace").strip() if raw else ""


def cpu_features(info: str | None = None) -> dict[str, bool]:
    """``{"AVX2": True, "AMX_INT8": False, ...}`` parsed from :func:`system_info`."""
    text = system_info() if info is None else info
    return {k: v == "1" for k, v in re.findall(r"([A-Z0-9_]+) = ([01])", text)}


def _cpu_lib() -> Any:
    cpu = _load("libggml-cpu")
    if cpu is None or not all(
        hasattr(cpu, n)
        for n in (
            "ggml_backend_cpu_init",
            "ggml_backend_is_cpu",
            "ggml_backend_cpu_set_use_ref",
        )
    ):
        return None
    cpu.ggml_backend_cpu_init.restype = ctypes.c_void_p
    cpu.ggml_backend_is_cpu.argtypes = [ctypes.c_void_p]
    cpu.ggml_backend_is_cpu.restype = ctypes.c_bool
    cpu.ggml_backend_cpu_set_use_ref.argtypes = [ctypes.c_void_p, ctypes.c_bool]
    cpu.ggml_backend_cpu_set_use_ref.restype = None
    return cpu


@functools.cache
def _cpu_guid() -> bytes | None:
    """The 16 GUID bytes that identify ggml's CPU backend (read from a throwaway backend)."""
    cpu, base = _cpu_lib(), _load("libggml-base")
    if cpu is None or base is None or not hasattr(base, "ggml_backend_free"):
        return None
    base.ggml_backend_free.argtypes = [ctypes.c_void_p]
    backend = cpu.ggml_backend_cpu_init()
    if not backend:
        return None
    try:
        guid_ptr = ctypes.c_void_p.from_address(backend).value
        return ctypes.string_at(guid_ptr, 16) if guid_ptr else None
    finally:
        base.ggml_backend_free(backend)


def _word(mem: int, addr: int) -> int | None:
    if not 4096 <= addr < (1 << 63):
        return None
    try:
        raw = os.pread(mem, 8, addr)
    except OSError:
        return None
    return int.from_bytes(raw, "little") if len(raw) == 8 else None


def context_cpu_backend(ctx_ptr: int) -> int | None:
    """Address of the CPU backend a ``llama_context`` computes with, or ``None`` if it cannot be
    found unambiguously."""
    cpu, guid = _cpu_lib(), _cpu_guid()
    if cpu is None or guid is None or not ctx_ptr:
        return None
    try:
        mem = os.open("/proc/self/mem", os.O_RDONLY)
    except OSError:
        return None
    try:
        try:
            blob = os.pread(mem, _SCAN_BYTES, ctx_ptr)
        except OSError:
            return None
        hits: set[int] = set()
        for off in range(0, len(blob) - 7, 8):
            cand = int.from_bytes(blob[off : off + 8], "little")
            first = _word(mem, cand)
            if first is None or _word(mem, first) is None:
                continue
            try:
                if os.pread(mem, 16, first) == guid:
                    hits.add(cand)
            except OSError:
                continue
    finally:
        os.close(mem)
    if len(hits) != 1:
        return None
    backend = hits.pop()
    return backend if cpu.ggml_backend_is_cpu(backend) else None


def set_reference_mode(ctx_ptr: int, on: bool = True) -> bool:
    """Switch the context's CPU backend to ggml's reference kernels (no tiled or KV-split flash
    attention, no tiled K-quant matmul, no op fusion); returns whether it was done."""
    backend = context_cpu_backend(ctx_ptr)
    cpu = _cpu_lib()
    if backend is None or cpu is None:
        return False
    cpu.ggml_backend_cpu_set_use_ref(backend, on)
    return True
