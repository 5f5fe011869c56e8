"""What a :class:`~logprobe.engines.remote.RemoteEngine` has learned about its server, in one
object the engine owns.

Servers that call themselves OpenAI-compatible differ where logprobs are concerned. The engine
finds out as it goes (or all at once with ``probe()``) and records it here, through the methods
below; the helper modules (``_remote_score``, ``_remote_stream``, ``_probe``) only report what
they saw and never change engine state themselves.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from ._probe import ServerCapabilities


@dataclass
class ServerQuirks:
    """The server's known quirks; ``None`` means "not found out yet"."""

    min_top_logprobs: int = 0
    """1 once the server is seen to return logprobs only when alternatives are requested
    (llama-cpp-python): the engine then asks for one and drops it from results."""
    echo_ok: bool | None = None
    """Whether ``echo`` prompt logprobs agree with generation (checked before the first score)."""
    echo_problem: str = ""
    tokenize_route: str | None = None
    """Which tokenize endpoint answered: ``"vllm"``, ``"llamacpp"`` or ``"lcpp-py"``."""
    capabilities: ServerCapabilities | None = None
    """Everything :meth:`RemoteEngine.probe` found, once it ran."""
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def require_alternatives(self) -> None:
        """The server gave no logprobs for ``top_logprobs: 0``: ask for one from now on."""
        with self._lock:
            self.min_top_logprobs = 1

    def record_echo(self, ok: bool, problem: str = "") -> None:
        with self._lock:
            self.echo_ok, self.echo_problem = ok, problem

    def record_tokenize_route(self, route: str) -> None:
        with self._lock:
            self.tokenize_route = route

    def record_probe(self, caps: ServerCapabilities) -> None:
        """Adopt what a probe found (it asked the server directly, so it overrides guesses)."""
        echo_problem = next(
            (p.removeprefix("echo: ") for p in caps.problems if p.startswith("echo: ")), ""
        )
        with self._lock:
            self.capabilities = caps
            self.echo_ok, self.echo_problem = caps.echo, echo_problem
            if caps.top_logprobs_required:
                self.min_top_logprobs = 1
