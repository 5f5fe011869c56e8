"""Engines: the embedded llama.cpp engine (default) and the remote OpenAI-compatible engine.

``LlamaEngine`` is imported on first use, so ``import logprobe.engines`` does not load llama.cpp.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._aio import AsyncEventStream
from .base import (
    DEFAULT_MAX_LOGPROBS,
    Engine,
    GenerationOptions,
    GenerationParams,
    LocalEngine,
    StreamEvent,
    TokenConstraint,
    resolve_params,
)
from .remote import RemoteEngine, ServerCapabilities

if TYPE_CHECKING:
    from .llamacpp import LlamaEngine


def __getattr__(name: str) -> Any:
    if name == "LlamaEngine":
        from .llamacpp import LlamaEngine

        return LlamaEngine
    raise AttributeError(f"module 'logprobe.engines' has no attribute {name!r}")


__all__ = [
    "AsyncEventStream",
    "DEFAULT_MAX_LOGPROBS",
    "Engine",
    "GenerationOptions",
    "GenerationParams",
    "LlamaEngine",
    "LocalEngine",
    "RemoteEngine",
    "ServerCapabilities",
    "StreamEvent",
    "TokenConstraint",
    "resolve_params",
]
