"""A header-read timeout for uvicorn's h11 protocol (slowloris).

uvicorn closes idle keep-alive connections only after a response; a client that opens a
connection and trickles its request headers (or sends nothing) keeps it forever. This protocol
closes a connection whose request headers are not complete ``header_timeout_s`` after it opened
or after its previous response finished. (Such connections never hold a generation slot; this
bounds the sockets and memory they hold.) Use it with ``uvicorn.Config(http=...)``.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

logger = logging.getLogger("logprobe.server")

DEFAULT_HEADER_TIMEOUT_S = 10.0


def header_timeout_protocol(header_timeout_s: float = DEFAULT_HEADER_TIMEOUT_S) -> type:
    """An h11 protocol class closing connections whose request headers take longer than
    ``header_timeout_s`` seconds."""

    class HeaderTimeoutH11Protocol(H11Protocol):
        _header_timer: asyncio.TimerHandle | None = None

        def connection_made(self, transport: Any) -> None:
            super().connection_made(transport)
            self._arm()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            self._arm()

        def connection_lost(self, exc: Exception | None) -> None:
            if self._header_timer is not None:
                self._header_timer.cancel()
            super().connection_lost(exc)

        def _arm(self) -> None:
            if self._header_timer is not None:
                self._header_timer.cancel()
            self._header_timer = self.loop.call_later(header_timeout_s, self._expire)

        def _expire(self) -> None:
            self._header_timer = None
            # IDLE: no complete request head since the timer was armed (a request whose headers
            # arrived has moved on to SEND_BODY or DONE; its body has its own time limit)
            if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
                logger.info(
                    "closing a connection that sent no complete request headers in %g s",
                    header_timeout_s,
                )
                self.transport.close()

    return HeaderTimeoutH11Protocol


__all__ = ["DEFAULT_HEADER_TIMEOUT_S", "header_timeout_protocol"]
