"""The FastAPI application: thin routes over :class:`~logprobe.server.serving.Serving`.

    app = create_app(engine, api_key=None, max_logprobs=20, max_queue=64, store=None, run=None)

Routes: ``GET /health``, ``GET /v1/models``, ``POST /v1/chat/completions``,
``POST /v1/completions``, ``POST /v1/responses``, ``POST /tokenize`` and ``POST /detokenize``
(vLLM's extensions); the web viewer (:mod:`logprobe.web`) under
``/ui`` when a run store is given.
"""

from __future__ import annotations

import hmac
import logging
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from . import tokens
from .errors import AuthenticationError, install_error_handlers, logprobe_error_response
from .protocol import (
    ChatCompletionRequest,
    CompletionRequest,
    DetokenizeRequest,
    ResponsesRequest,
    TokenizeRequest,
)
from .recording import Recorder, StoreLike
from .responses import create_response
from .serving import Serving, json_response

logger = logging.getLogger("logprobe.server")

DEFAULT_MAX_QUEUE = 64
"""Requests in flight (generating or waiting for the engine) before new ones get a 429."""

router = APIRouter()


def _serving(request: Request) -> Serving:
    serving: Serving = request.app.state.serving
    return serving


@router.get("/health")
async def health(request: Request) -> Response:
    return json_response(_serving(request).health())


@router.get("/v1/models")
async def models(request: Request) -> Response:
    return json_response(_serving(request).models())


@router.post("/v1/chat/completions")
async def chat_completions(body: ChatCompletionRequest, request: Request) -> Response:
    return await _serving(request).chat(body)


@router.post("/v1/completions")
async def completions(body: CompletionRequest, request: Request) -> Response:
    return await _serving(request).completions(body)


@router.post("/v1/responses")
async def responses(body: ResponsesRequest, request: Request) -> Response:
    return await create_response(_serving(request), body)


@router.post("/tokenize")
async def tokenize(body: TokenizeRequest, request: Request) -> Response:
    return json_response(await tokens.tokenize(_serving(request), body))


@router.post("/detokenize")
async def detokenize(body: DetokenizeRequest, request: Request) -> Response:
    return json_response(tokens.detokenize(_serving(request), body))


PROTECTED_PREFIXES = ("/v1", "/tokenize", "/detokenize")
"""Paths that need the API key when one is set (``/health`` and the viewer do not)."""


class APIKeyMiddleware:
    """Requires ``Authorization: Bearer <key>`` on ``/v1/*``, ``/tokenize`` and ``/detokenize``
    (before the body is even read)."""

    def __init__(self, app: ASGIApp, api_key: str) -> None:
        self.app = app
        self._key = f"Bearer {api_key}".encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith(PROTECTED_PREFIXES):
            given = dict(scope["headers"]).get(b"authorization")
            if given is None or not hmac.compare_digest(given, self._key):
                msg = ("You didn't provide an API key. Send it as 'Authorization: Bearer KEY'."
                       if given is None else "Incorrect API key provided.")
                await logprobe_error_response(AuthenticationError(msg))(scope, receive, send)
                return
        await self.app(scope, receive, send)


def _mount_web(app: FastAPI, store: StoreLike | None, engine: Any) -> bool:
    """Mount the viewer (:func:`logprobe.web.mount_ui`) under ``/ui`` when there is a store to
    show; returns whether it did."""
    if store is None:
        return False
    try:
        from ..web import mount_ui
    except ImportError:  # pragma: no cover - the viewer ships with logprobe
        logger.warning("the web viewer is not available; /ui is not mounted")
        return False
    mount_ui(app, store, engine)  # type: ignore[arg-type]
    return True


def create_app(
    engine: Any,
    *,
    api_key: str | None = None,
    max_logprobs: int = 20,
    max_queue: int = DEFAULT_MAX_QUEUE,
    store: StoreLike | None = None,
    run: str | None = None,
) -> FastAPI:
    """An OpenAI-compatible app serving ``engine`` (see :mod:`logprobe.server`).

    ``max_logprobs`` caps ``top_logprobs``/``logprobs`` (and cannot exceed the engine's own cap);
    ``max_queue`` bounds requests in flight (more get a 429 with ``Retry-After``); with ``store``
    and ``run`` every request and response is recorded into that run.
    """
    engine_cap = int(getattr(engine, "max_logprobs", max_logprobs))
    if max_logprobs > engine_cap:
        logger.warning("max_logprobs %d exceeds the engine's cap %d; using %d",
                       max_logprobs, engine_cap, engine_cap)
    recorder = Recorder(store, run) if store is not None and run else None
    app = FastAPI(title="logprobe", summary="OpenAI-compatible server with full logprobs",
                  version=_version())
    app.state.serving = Serving(engine, max_logprobs=min(max_logprobs, engine_cap),
                                max_queue=max_queue, recorder=recorder)
    install_error_handlers(app)
    app.include_router(router)
    app.state.web_mounted = _mount_web(app, store, engine)
    if api_key:
        app.add_middleware(APIKeyMiddleware, api_key=api_key)
    return app


def _version() -> str:
    from .. import __version__

    return __version__


__all__ = ["DEFAULT_MAX_QUEUE", "PROTECTED_PREFIXES", "APIKeyMiddleware", "create_app", "router"]
