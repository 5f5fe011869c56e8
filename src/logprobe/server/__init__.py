"""OpenAI-compatible HTTP server with full logprobs (``logprobe serve``).

    from logprobe.server import create_app
    app = create_app(engine, api_key=None, max_logprobs=20, max_queue=64)

Modules: :mod:`.protocol` (pydantic wire models), :mod:`.convert` (request -> engine inputs),
:mod:`.serving` and :mod:`.responses` (logic), :mod:`.render` (logprobs shapes),
:mod:`.streaming` (threads -> asyncio, admission, SSE), :mod:`.errors` (OpenAI error shape),
:mod:`.recording` (run store), :mod:`.app` (routes).
"""

from __future__ import annotations

from .app import DEFAULT_MAX_QUEUE, APIKeyMiddleware, create_app
from .errors import AuthenticationError, ServerBusyError
from .serving import Serving

__all__ = [
    "DEFAULT_MAX_QUEUE",
    "APIKeyMiddleware",
    "AuthenticationError",
    "ServerBusyError",
    "Serving",
    "create_app",
]
