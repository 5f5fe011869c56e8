"""Helpers for the security tests: ``logprobe serve`` in a subprocess, the test key."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

_WEB = str(Path(__file__).resolve().parents[1] / "web")
if _WEB not in sys.path:  # web_support (LiveServer, Chromium settings) and web_data
    sys.path.insert(0, _WEB)

from web_support import CHROMIUM, CHROMIUM_ARGS, LiveServer, free_port  # noqa: E402,F401

KEY = "s3cret-key-for-tests"
EXE = Path(sys.executable).with_name("logprobe")


class ServeProcess:
    """``logprobe serve`` in a subprocess on a free port; stderr collected into a file."""

    def __init__(self, args: list[str], tmp: Path, env: dict[str, str] | None = None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = tmp / f"serve-{self.port}.log"
        self._log = self.log_path.open("w")
        cmd = [
            str(EXE),
            "serve",
            "--port",
            str(self.port),
            "--threads",
            "2",
            "--ctx",
            "2048",
            "--parallel",
            "4",
            *args,
        ]
        self.proc = subprocess.Popen(
            cmd,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
        )

    @classmethod
    def python(cls, script: Path, args: list[str], tmp: Path) -> ServeProcess:
        """A Python launcher script (for faults that need set-up inside the server process)."""
        self = cls.__new__(cls)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = tmp / f"serve-{self.port}.log"
        self._log = self.log_path.open("w")
        self.proc = subprocess.Popen(
            [sys.executable, str(script), str(self.port), *args],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        return self

    def wait_ready(self, timeout: float = 120) -> ServeProcess:
        deadline = time.monotonic() + timeout
        while True:
            try:
                if httpx.get(self.url + "/health", timeout=2).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited {self.proc.returncode}: {self.log()[-2000:]}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"server did not start: {self.log()[-2000:]}")
            time.sleep(0.2)

    def log(self) -> str:
        self._log.flush()
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=30)
        self._log.close()


def port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex(("127.0.0.1", port)) == 0


class SocketServer:
    """uvicorn in a thread on a listening socket we made, so socket options (a small send
    buffer, inherited by accepted connections) can be set; stands in for a server whose
    kernel buffers toward a client are full, without generating megabytes on a loaded host."""

    def __init__(self, app: Any, *, sndbuf: int | None = None, http: Any = "auto") -> None:
        import threading

        import uvicorn

        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if sndbuf is not None:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, sndbuf)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(
            app, log_level="warning", lifespan="off", http=http, timeout_graceful_shutdown=2
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True
        )

    def __enter__(self) -> SocketServer:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=15)
        self.sock.close()
