"""What ``/openapi.json`` says each route answers, so that schema-driven clients and fuzzers
(schemathesis) can check real responses against it.

Routes return ready JSON (the renderers own the exact OpenAI shapes, tested field by field), so
the documented success bodies name the fields every answer has and allow the rest; errors are
documented exactly: OpenAI's ``{"error": {"message", "type", "param", "code"}}`` for every status
the server can answer with. FastAPI's default 422 is removed: validation errors are 400s here.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel, ConfigDict


class ErrorDetail(BaseModel):
    model_config = ConfigDict(extra="forbid")

    message: str
    type: str
    param: str | None
    code: str | int | None


class ErrorResponse(BaseModel):
    """Every error the server answers with (OpenAI's shape)."""

    model_config = ConfigDict(extra="forbid")

    error: ErrorDetail


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow")


class ChatCompletion(_Open):
    id: str
    object: str
    created: int
    model: str
    choices: list[dict[str, Any]]


class TextCompletion(ChatCompletion):
    pass


class Response(_Open):
    id: str
    object: str
    model: str
    output: list[dict[str, Any]]


class ModelList(_Open):
    object: str
    data: list[dict[str, Any]]


class Health(_Open):
    status: str
    model: str


class TokenizeResult(_Open):
    count: int
    max_model_len: int
    tokens: list[int]


class DetokenizeResult(_Open):
    prompt: str


_MODELS: dict[str, type[BaseModel]] = {
    "chat.completion": ChatCompletion,
    "text_completion": TextCompletion,
    "response": Response,
    "ModelList": ModelList,
    "Health": Health,
    "TokenizeResult": TokenizeResult,
    "DetokenizeResult": DetokenizeResult,
}
_ERRORS = {
    400: "Invalid request (a field is named in error.param)",
    401: "Missing or wrong API key",
    404: "Unknown model or route",
    408: "The request body arrived too slowly",
    413: "Request body too large",
    429: "Too many requests in flight (Retry-After)",
    500: "Server error (no traceback)",
    503: "The server is shutting down",
}


SSE_EVENT: dict[str, Any] = {
    "type": "object",
    "description": "One server-sent event: 'data' is a JSON chunk (or '[DONE]')",
    "properties": {
        "event": {"type": "string"},
        "data": {"type": "string"},
        "id": {"type": "string"},
        "retry": {"type": "integer"},
    },
    "required": ["data"],
}


def _errors(statuses: list[int]) -> dict[int | str, dict[str, Any]]:
    return {s: {"model": ErrorResponse, "description": _ERRORS[s]} for s in statuses}


def generation(kind: str) -> dict[int | str, dict[str, Any]]:
    """Responses of a generation route: JSON, or ``text/event-stream`` with ``stream: true``."""
    ok: dict[str, Any] = {
        "model": _MODELS[kind],
        "description": "The result, or with "
        "'stream': true a text/event-stream of chunks ending in [DONE]",
        "content": {"text/event-stream": {"schema": SSE_EVENT}},
    }
    return {200: ok, **_errors([400, 401, 404, 408, 413, 429, 500, 503])}


def plain(kind: str, *, auth: bool = True) -> dict[int | str, dict[str, Any]]:
    statuses = [400, 401, 404, 408, 413, 500, 503] if auth else [503]
    return {200: {"model": _MODELS[kind], "description": "The result"}, **_errors(statuses)}


def _drop_422(schema: dict[str, Any]) -> dict[str, Any]:
    for item in schema.get("paths", {}).values():
        for op in item.values():
            if isinstance(op, dict):
                op.get("responses", {}).pop("422", None)
    comps = schema.get("components", {}).get("schemas", {})
    for name in ("HTTPValidationError", "ValidationError"):
        comps.pop(name, None)
    return schema


def install(app: FastAPI) -> None:
    """Make ``app.openapi()`` describe the responses as they really are (no 422)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = _drop_422(
                get_openapi(
                    title=app.title, version=app.version, summary=app.summary, routes=app.routes
                )
            )
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


__all__ = ["ErrorDetail", "ErrorResponse", "generation", "install", "plain"]
