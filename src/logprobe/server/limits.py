"""Limits that hold under hostile or careless clients.

- :class:`BodyLimitMiddleware`: a request body larger than ``max_body_bytes`` gets **413** before
  it is read whole (at once from ``Content-Length``; for a chunked body as soon as the bytes
  received pass the limit), and a body that does not arrive within ``body_timeout_s`` gets
  **408**. Nothing is buffered beyond the limit.
- :class:`SendTimeoutMiddleware`: a client that stops reading cannot hold its generation slot:
  when one write to it stays blocked (the socket buffers full) longer than ``send_timeout_s``,
  the response is abandoned, which closes the engine stream and frees the admission slot.
- :func:`check_request`: bounds on what one request may ask for (prompts in a batch, choices,
  ``logit_bias`` entries, stop strings), answered with OpenAI-shaped 400s.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
from dataclasses import dataclass
from typing import Any

import anyio
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..errors import InvalidRequestError, LogprobeError
from .errors import logprobe_error_response

logger = logging.getLogger("logprobe.server")

DEFAULT_MAX_BODY_BYTES = 4 * 1024 * 1024
DEFAULT_BODY_TIMEOUT_S = 30.0
DEFAULT_SEND_TIMEOUT_S = 30.0
MAX_BODY_ENV = "LOGPROBE_MAX_BODY"


@dataclass(frozen=True)
class RequestBounds:
    """What one request may ask for (documented in docs/SECURITY.md)."""

    max_prompts: int = 128  # items in a /v1/completions prompt list
    max_choices: int = 256  # prompts x n, sequences one request may start
    max_n: int = 128  # n (the engine's own cap)
    max_logit_bias: int = 1024  # entries in logit_bias
    max_stop: int = 16  # stop sequences
    max_stop_chars: int = 256  # characters in one stop sequence


DEFAULT_BOUNDS = RequestBounds()


class PayloadTooLargeError(LogprobeError):
    status_code = 413


class RequestTimeoutError(LogprobeError):
    status_code = 408


def parse_size(text: str) -> int:
    """``4MB``, ``512k``, ``1048576`` -> bytes (binary multiples)."""
    raw = text.strip().lower().removesuffix("b").removesuffix("i")
    mult = 1
    for suffix, m in (("k", 1024), ("m", 1024**2), ("g", 1024**3)):
        if raw.endswith(suffix):
            raw, mult = raw[:-1], m
            break
    try:
        value = int(float(raw) * mult)
    except ValueError:
        raise InvalidRequestError(
            f"not a size: {text!r} (use e.g. 4MB, 512k or 1048576)", param="max_body"
        ) from None
    if value < 1024:
        raise InvalidRequestError(f"body size limit {text!r} is below 1 KiB", param="max_body")
    return value


def max_body_from_env(default: int = DEFAULT_MAX_BODY_BYTES) -> int:
    value = os.environ.get(MAX_BODY_ENV)
    return parse_size(value) if value else default


class _Refused(Exception):
    pass


class BodyLimitMiddleware:
    """413 for bodies over ``max_body_bytes``, 408 for bodies slower than ``body_timeout_s``."""

    def __init__(
        self,
        app: ASGIApp,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
        body_timeout_s: float = DEFAULT_BODY_TIMEOUT_S,
    ) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.body_timeout_s = body_timeout_s

    def _too_large(self) -> PayloadTooLargeError:
        return PayloadTooLargeError(
            f"Request body too large: the limit is {self.max_body_bytes} bytes "
            f"(logprobe serve --max-body).",
            code="request_too_large",
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None:
            if not length.strip().isdigit():
                err: LogprobeError = InvalidRequestError(
                    "Invalid Content-Length header.", code="invalid_request"
                )
                await logprobe_error_response(err)(scope, receive, send)
                return
            if int(length) > self.max_body_bytes:
                await logprobe_error_response(self._too_large())(scope, receive, send)
                return
        state = {"received": 0, "refused": False, "started": False, "done": False}
        deadline = anyio.current_time() + self.body_timeout_s

        async def guarded_send(message: Message) -> None:
            if state["refused"]:
                return  # we already answered; drop what the app says after the refusal
            if message["type"] == "http.response.start":
                state["started"] = True
            await send(message)

        async def refuse(error: LogprobeError) -> Message:
            if not state["started"]:
                state["refused"] = True
                resp = logprobe_error_response(error)
                resp.headers["Connection"] = "close"
                await resp(scope, receive, send)
            return {"type": "http.disconnect"}

        async def limited_receive() -> Message:
            if state["refused"]:
                return {"type": "http.disconnect"}
            if state["done"]:  # body read: the app is waiting for a disconnect, no deadline
                return await receive()
            with anyio.move_on_after(max(0.0, deadline - anyio.current_time())) as waited:
                message = await receive()
            if waited.cancelled_caught:
                return await refuse(
                    RequestTimeoutError(
                        f"The request body did not arrive within {self.body_timeout_s:g} s.",
                        code="request_timeout",
                    )
                )
            if message["type"] == "http.request":
                state["received"] += len(message.get("body", b""))
                if state["received"] > self.max_body_bytes:
                    return await refuse(self._too_large())
                state["done"] = not message.get("more_body", False)
            return message

        await self.app(scope, limited_receive, guarded_send)


class SendTimeoutMiddleware:
    """Abandon a response when one write to the client blocks longer than ``send_timeout_s``
    (a client that stopped reading): its work is cancelled, which stops its engine work and
    frees its slot, and the connection is dropped.

    One cancel scope spans the whole response; each send only moves its deadline (to now +
    timeout while the send is in progress, back to infinity after), instead of entering a new
    timeout scope per send: a streamed response sends once per token, and that scope was a
    quarter of the event loop's work per token.
    """

    def __init__(self, app: ASGIApp, send_timeout_s: float = DEFAULT_SEND_TIMEOUT_S) -> None:
        self.app = app
        self.send_timeout_s = send_timeout_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        timeout = self.send_timeout_s
        clock = asyncio.get_running_loop().time  # anyio's clock on asyncio, without the lookup
        with anyio.CancelScope() as guard:

            async def timed_send(message: Message) -> None:
                guard.deadline = clock() + timeout
                await send(message)
                guard.deadline = math.inf

            try:
                await self.app(scope, receive, timed_send)
            except OSError:
                if not guard.cancel_called:
                    raise
        if guard.cancelled_caught:
            logger.warning(
                "%s %s: client stopped reading for %g s; response abandoned",
                scope.get("method"),
                scope.get("path"),
                timeout,
            )


def check_request(body: Any, bounds: RequestBounds = DEFAULT_BOUNDS) -> None:
    """Bounds on one request's size of work; an :class:`InvalidRequestError` (400) naming the
    field otherwise. Works on chat, completions and responses request models."""
    prompt = getattr(body, "prompt", None)
    n_prompts = 1
    if isinstance(prompt, list) and prompt and not isinstance(prompt[0], int):
        n_prompts = len(prompt)
        _at_most("prompt", n_prompts, bounds.max_prompts, "prompts in one request")
    n = getattr(body, "n", 1) or 1
    _at_most("n", n, bounds.max_n, "choices")
    if n_prompts * n > bounds.max_choices:
        raise InvalidRequestError(
            f"Invalid 'n': {n_prompts} prompts x n={n} asks for {n_prompts * n} sequences; at "
            f"most {bounds.max_choices} per request.",
            param="n",
            code="integer_above_max_value",
        )
    bias = getattr(body, "logit_bias", None)
    if bias:
        _at_most("logit_bias", len(bias), bounds.max_logit_bias, "entries")
    stop = getattr(body, "stop", None)
    if isinstance(stop, list):
        _at_most("stop", len(stop), bounds.max_stop, "stop sequences")
    for i, s in enumerate([stop] if isinstance(stop, str) else (stop or [])):
        if isinstance(s, str) and len(s) > bounds.max_stop_chars:
            raise InvalidRequestError(
                f"Invalid 'stop': a stop sequence has {len(s)} characters; at most "
                f"{bounds.max_stop_chars}.",
                param="stop" if isinstance(stop, str) else f"stop[{i}]",
                code="string_above_max_length",
            )


def _at_most(param: str, value: int, limit: int, what: str) -> None:
    if value > limit:
        raise InvalidRequestError(
            f"Invalid '{param}': {value} {what}; at most {limit} per request.",
            param=param,
            code="array_above_max_length" if param != "n" else "integer_above_max_value",
        )


__all__ = [
    "DEFAULT_BODY_TIMEOUT_S",
    "DEFAULT_BOUNDS",
    "DEFAULT_MAX_BODY_BYTES",
    "DEFAULT_SEND_TIMEOUT_S",
    "MAX_BODY_ENV",
    "BodyLimitMiddleware",
    "PayloadTooLargeError",
    "RequestBounds",
    "RequestTimeoutError",
    "SendTimeoutMiddleware",
    "check_request",
    "max_body_from_env",
    "parse_size",
]
