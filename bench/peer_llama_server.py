"""Build llama.cpp's own C++ ``llama-server`` (the strongest local peer) for the benchmarks.

Bench-only: the product never needs it. The sources are the llama.cpp that the installed
llama-cpp-python vendors (its sdist, from pip's cache or ``pip download --no-binary``), so the
peer runs the same ggml as logprobe. Built once per version and CPU into a cache directory
(``$LOGPROBE_BENCH_CACHE``, default ``~/.cache/logprobe-bench``); about 10 minutes on 2 cores.

    .venv/bin/python bench/peer_llama_server.py      # prints the binary's path (builds if needed)
"""

from __future__ import annotations

import hashlib
import os
import platform
import shutil
import subprocess
import sys
import tarfile
from importlib import metadata
from pathlib import Path

CMAKE_FLAGS = [
    "-DLLAMA_BUILD_UI=OFF",
    "-DLLAMA_CURL=OFF",
    "-DLLAMA_OPENSSL=OFF",
    "-DGGML_NATIVE=ON",
    "-DLLAMA_BUILD_TESTS=OFF",
    "-DLLAMA_BUILD_EXAMPLES=OFF",
    "-DCMAKE_BUILD_TYPE=Release",
]


def cache_dir() -> Path:
    env = os.environ.get("LOGPROBE_BENCH_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "logprobe-bench"


def _cpu_key() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            flags = next(line for line in f if line.startswith(("flags", "Features")))
    except (OSError, StopIteration):
        flags = platform.processor()
    return hashlib.sha256(flags.encode()).hexdigest()[:12]


def _sdist(version: str, dest: Path) -> Path:
    found = sorted(dest.glob(f"llama_cpp_python-{version}.tar.gz"))
    if found:
        return found[0]
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "download",
            f"llama-cpp-python=={version}",
            "--no-binary",
            ":all:",
            "--no-deps",
            "-q",
            "-d",
            str(dest),
        ],
        check=True,
    )
    return next(dest.glob(f"llama_cpp_python-{version}.tar.gz"))


def build(log: Path | None = None) -> Path:
    """Path of a ``llama-server`` built from the installed llama-cpp-python's vendored sources."""
    version = metadata.version("llama-cpp-python")
    root = cache_dir()
    exe = root / f"llama-server-{version}-{platform.machine()}-{_cpu_key()}"
    if exe.is_file():
        return exe
    root.mkdir(parents=True, exist_ok=True)
    src_root = root / f"src-{version}"
    if not (src_root / f"llama_cpp_python-{version}").is_dir():
        with tarfile.open(_sdist(version, root)) as tar:
            tar.extractall(src_root, filter="data")
    llama = src_root / f"llama_cpp_python-{version}" / "vendor" / "llama.cpp"
    build_dir = llama / "build-bench"
    out = open(log, "w") if log else subprocess.DEVNULL  # noqa: SIM115 - closed below
    try:
        subprocess.run(
            ["cmake", "-S", str(llama), "-B", str(build_dir), *CMAKE_FLAGS],
            check=True,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        subprocess.run(
            [
                "cmake",
                "--build",
                str(build_dir),
                "--target",
                "llama-server",
                "-j",
                str(os.cpu_count() or 2),
            ],
            check=True,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    finally:
        if log:
            out.close()  # type: ignore[union-attr]
    built = next(build_dir.rglob("llama-server"))
    shutil.copy2(built, exe)
    return exe


def available() -> Path | None:
    """The binary, building it if needed; ``None`` (with the reason on stderr) if it cannot."""
    try:
        return build()
    except (OSError, subprocess.CalledProcessError, StopIteration) as e:
        print(f"llama-server peer unavailable: {e}", file=sys.stderr)
        return None


if __name__ == "__main__":
    print(build(Path(sys.argv[1]) if len(sys.argv) > 1 else None))
