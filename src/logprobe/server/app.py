"""The FastAPI application: thin routes over :class:`~logprobe.server.serving.Serving`.

    app = create_app(engine, api_key=None, max_logprobs=20, max_queue=64, store=None, run=None)

Routes: ``GET /health``, ``GET /v1/models``, ``POST /v1/chat/completions``,
``POST /v1/completions``, ``POST /v1/responses``, ``POST /tokenize`` and ``POST /detokenize``
(vLLM's extensions); the web viewer (:mod:`logprobe.web`) under
``/ui`` when a run store is given. Middleware, outermost first: the API key (:mod:`.auth`),
body size and time limits, the send timeout (:mod:`.limits`), draining on SIGTERM
(:mod:`.drain`).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from fastapi import APIRouter, FastAPI, Request
from starlette.responses import Response

from . import openapi_doc, tokens
from .auth import AuthMiddleware, KeyAuth
from .drain import DrainMiddleware
from .errors import install_error_handlers
from .limits import (
    DEFAULT_BODY_TIMEOUT_S,
    DEFAULT_BOUNDS,
    DEFAULT_MAX_BODY_BYTES,
    DEFAULT_SEND_TIMEOUT_S,
    BodyLimitMiddleware,
    RequestBounds,
    SendTimeoutMiddleware,
    check_request,
)
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

if TYPE_CHECKING:
    from ..engines.base import LocalEngine

logger = logging.getLogger("logprobe.server")

DEFAULT_MAX_QUEUE = 64
"""Requests in flight (generating or waiting for the engine) before new ones get a 429."""

router = APIRouter()


async def _recorded_first(response: Response) -> Response:
    """Run a response's recording task before the reply goes out instead of after, so every
    reply a client received is in the store even if the process is killed right after it
    (streams record before their last chunk). The recorder never raises."""
    task = response.background
    if task is not None:
        response.background = None
        await task()
    return response


def _serving(request: Request) -> Serving:
    serving: Serving = request.app.state.serving
    return serving


@router.get("/health", responses=openapi_doc.plain("Health", auth=False))
async def health(request: Request) -> Response:
    return json_response(_serving(request).health())


@router.get("/v1/models", responses=openapi_doc.plain("ModelList"))
async def models(request: Request) -> Response:
    return json_response(_serving(request).models())


@router.post("/v1/chat/completions", responses=openapi_doc.generation("chat.completion"))
async def chat_completions(body: ChatCompletionRequest, request: Request) -> Response:
    check_request(body, request.app.state.bounds)
    return await _recorded_first(await _serving(request).chat(body))


@router.post("/v1/completions", responses=openapi_doc.generation("text_completion"))
async def completions(body: CompletionRequest, request: Request) -> Response:
    check_request(body, request.app.state.bounds)
    return await _recorded_first(await _serving(request).completions(body))


@router.post("/v1/responses", responses=openapi_doc.generation("response"))
async def responses(body: ResponsesRequest, request: Request) -> Response:
    return await _recorded_first(await create_response(_serving(request), body))


@router.post("/tokenize", responses=openapi_doc.plain("TokenizeResult"))
async def tokenize(body: TokenizeRequest, request: Request) -> Response:
    return json_response(await tokens.tokenize(_serving(request), body))


@router.post("/detokenize", responses=openapi_doc.plain("DetokenizeResult"))
async def detokenize(body: DetokenizeRequest, request: Request) -> Response:
    return json_response(tokens.detokenize(_serving(request), body))


def _mount_web(app: FastAPI, store: StoreLike | None, engine: LocalEngine, auth: KeyAuth) -> bool:
    """Mount the viewer (:func:`logprobe.web.mount_ui`) under ``/ui`` when there is a store to
    show; returns whether it did."""
    if store is None:
        return False
    from ..web import mount_ui  # imported here: the viewer's routes load only with a store

    serving: Serving = app.state.serving
    mount_ui(
        app,
        store,  # type: ignore[arg-type]
        engine,
        auth=auth,
        admission=serving.admission,
        stats=serving.stats,
    )
    return True


def create_app(
    engine: LocalEngine,
    *,
    api_key: str | None = None,
    max_logprobs: int = 20,
    max_queue: int = DEFAULT_MAX_QUEUE,
    store: StoreLike | None = None,
    run: str | None = None,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    body_timeout_s: float = DEFAULT_BODY_TIMEOUT_S,
    send_timeout_s: float = DEFAULT_SEND_TIMEOUT_S,
    bounds: RequestBounds = DEFAULT_BOUNDS,
) -> FastAPI:
    """An OpenAI-compatible app serving ``engine`` (see :mod:`logprobe.server`).

    ``max_logprobs`` caps ``top_logprobs``/``logprobs`` (and cannot exceed the engine's own cap);
    ``max_queue`` bounds requests in flight (more get a 429 with ``Retry-After``); with ``store``
    and ``run`` every request and response is recorded into that run. With ``api_key`` every
    route but ``/health`` needs it (:mod:`.auth`); bodies over ``max_body_bytes`` get a 413,
    bodies slower than ``body_timeout_s`` a 408, and a client that stops reading for
    ``send_timeout_s`` loses its response; ``bounds`` caps prompts, ``n``, ``logit_bias`` and
    ``stop`` per request (:mod:`.limits`).
    """
    engine_cap = engine.max_logprobs
    if max_logprobs > engine_cap:
        logger.warning(
            "max_logprobs %d exceeds the engine's cap %d; using %d",
            max_logprobs,
            engine_cap,
            engine_cap,
        )
    recorder = Recorder(store, run) if store is not None and run else None
    app = FastAPI(
        title="logprobe", summary="OpenAI-compatible server with full logprobs", version=_version()
    )
    app.state.serving = Serving(
        engine, max_logprobs=min(max_logprobs, engine_cap), max_queue=max_queue, recorder=recorder
    )
    app.state.draining = False
    app.state.bounds = bounds
    auth = KeyAuth(api_key)
    app.state.auth = auth
    install_error_handlers(app)
    app.include_router(router)
    app.state.web_mounted = _mount_web(app, store, engine, auth)
    openapi_doc.install(app)
    # added last = outermost: a refused request is answered before anything reads its body
    app.add_middleware(DrainMiddleware)
    app.add_middleware(SendTimeoutMiddleware, send_timeout_s=send_timeout_s)
    app.add_middleware(
        BodyLimitMiddleware, max_body_bytes=max_body_bytes, body_timeout_s=body_timeout_s
    )
    app.add_middleware(AuthMiddleware, auth=auth)
    return app


def _version() -> str:
    from .. import __version__

    return __version__


__all__ = ["DEFAULT_MAX_QUEUE", "create_app", "router"]
