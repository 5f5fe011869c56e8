"""Draining on SIGTERM: requests in flight finish, new ones get 503, then the process exits.

:class:`DrainingServer` is a uvicorn server whose first SIGTERM does not stop listening at once
(which would turn new requests into refused connections and cut the streams in flight at the
graceful-shutdown timeout): it sets ``app.state.draining``, so :class:`DrainMiddleware` answers
every new request with a 503 (``Retry-After``, ``Connection: close``) while the generations in
flight run to their end; when none is left (or ``drain_timeout_s`` passed) uvicorn's normal
shutdown runs. A second SIGTERM, or SIGINT, stops at once as uvicorn always does.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from types import FrameType
from typing import Any

import uvicorn
from starlette.types import ASGIApp, Receive, Scope, Send

from ..errors import LogprobeError
from .errors import logprobe_error_response

logger = logging.getLogger("logprobe.server")

DEFAULT_DRAIN_TIMEOUT_S = 60.0


class ServerDrainingError(LogprobeError):
    status_code = 503
    error_type = "server_error"


class DrainMiddleware:
    """503 for every request that arrives after the server started draining."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        owner = scope.get("app")
        if (
            scope["type"] == "http"
            and owner is not None
            and getattr(owner.state, "draining", False)
        ):
            response = logprobe_error_response(
                ServerDrainingError(
                    "The server is shutting down; retry on another instance or later.",
                    code="server_shutting_down",
                )
            )
            response.headers["Retry-After"] = "5"
            response.headers["Connection"] = "close"
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)


class DrainingServer(uvicorn.Server):
    """uvicorn's server with a draining first SIGTERM (see the module docstring)."""

    def __init__(
        self, config: uvicorn.Config, app: Any, drain_timeout_s: float = DEFAULT_DRAIN_TIMEOUT_S
    ) -> None:
        super().__init__(config)
        self._app = app
        self.drain_timeout_s = drain_timeout_s
        self._drain_started = False

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if sig == signal.SIGTERM and not self._drain_started:
            self._drain_started = True
            self._app.state.draining = True
            in_flight = self._app.state.serving.stats.in_flight
            logger.warning(
                "SIGTERM: draining %d request(s) in flight (at most %g s); new requests get 503",
                in_flight,
                self.drain_timeout_s,
            )
            threading.Thread(
                target=self._exit_when_idle, name="logprobe-drain", daemon=True
            ).start()
            return
        super().handle_exit(sig, frame)

    def _exit_when_idle(self) -> None:
        deadline = time.monotonic() + self.drain_timeout_s
        stats = self._app.state.serving.stats
        while stats.in_flight > 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        if stats.in_flight:
            logger.warning(
                "drain timeout: stopping with %d request(s) still in flight", stats.in_flight
            )
        else:
            logger.info("drained: no request in flight; shutting down")
        self.should_exit = True


__all__ = ["DEFAULT_DRAIN_TIMEOUT_S", "DrainMiddleware", "DrainingServer", "ServerDrainingError"]
