"""Engines: the embedded llama.cpp engine (default) and the remote OpenAI-compatible engine."""

from __future__ import annotations

from .base import DEFAULT_MAX_LOGPROBS, Engine, GenerationParams, StreamEvent, TokenConstraint
from .remote import RemoteEngine, ServerCapabilities

__all__ = [
    "DEFAULT_MAX_LOGPROBS",
    "Engine",
    "GenerationParams",
    "RemoteEngine",
    "ServerCapabilities",
    "StreamEvent",
    "TokenConstraint",
]
