"""OpenAI-compatible HTTP server with full logprobs (``logprobe serve``).

    from logprobe.server import create_app
    app = create_app(engine, api_key=None, max_logprobs=20, max_queue=64)

Modules: :mod:`.protocol` (pydantic wire models), :mod:`.convert` (request -> engine inputs),
:mod:`.serving` and :mod:`.responses` (logic), :mod:`.render` (logprobs shapes),
:mod:`.streaming` (threads -> asyncio, admission, SSE), :mod:`.errors` (OpenAI error shape),
:mod:`.recording` (run store), :mod:`.auth` (one key for every route), :mod:`.limits` (body
size, slow clients, request bounds), :mod:`.drain` (SIGTERM), :mod:`.openapi_doc`,
:mod:`.app` (routes).
"""

from __future__ import annotations

from .app import DEFAULT_MAX_QUEUE, create_app
from .auth import AuthMiddleware, KeyAuth
from .drain import DrainingServer
from .errors import AuthenticationError, ServerBusyError
from .limits import RequestBounds
from .serving import Serving

__all__ = [
    "DEFAULT_MAX_QUEUE",
    "AuthMiddleware",
    "AuthenticationError",
    "DrainingServer",
    "KeyAuth",
    "RequestBounds",
    "ServerBusyError",
    "Serving",
    "create_app",
]
