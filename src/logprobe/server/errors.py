"""Errors in OpenAI's shape: ``{"error": {"message", "type", "param", "code"}}``.

Every failure leaves the server in that shape with the right status: bad input is a 400 naming
the field in ``param`` (pydantic validation errors included, never a 422), unknown model 404,
missing or wrong API key 401, a full queue 429 with ``Retry-After``. Any
:class:`~logprobe.errors.LogprobeError` maps through its own ``status_code`` / ``error_type`` /
``param`` / ``code``; only a genuine bug is a 500, and its body carries no traceback.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from ..errors import LogprobeError

logger = logging.getLogger("logprobe.server")


class ServerBusyError(LogprobeError):
    """Too many requests in flight; the client should retry after ``retry_after`` seconds."""

    status_code = 429
    error_type = "requests"

    def __init__(self, message: str, *, retry_after: int = 1):
        super().__init__(message, code="rate_limit_exceeded")
        self.retry_after = retry_after


class AuthenticationError(LogprobeError):
    """Missing or wrong API key (401)."""

    status_code = 401

    def __init__(self, message: str):
        super().__init__(message, code="invalid_api_key")


def error_body(
    message: str,
    type_: str = "invalid_request_error",
    param: str | None = None,
    code: str | int | None = None,
) -> dict[str, Any]:
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}


def error_response(
    status: int,
    message: str,
    type_: str = "invalid_request_error",
    param: str | None = None,
    code: str | int | None = None,
    headers: Mapping[str, str] | None = None,
) -> Response:
    body = json.dumps(error_body(message, type_, param, code), ensure_ascii=False)
    return Response(
        body, status_code=status, media_type="application/json", headers=dict(headers or {})
    )


def logprobe_error_response(exc: LogprobeError) -> Response:
    headers = {}
    if isinstance(exc, ServerBusyError):
        headers["Retry-After"] = str(exc.retry_after)
    return error_response(
        exc.status_code, exc.message, exc.error_type, exc.param, exc.code, headers
    )


def field_path(loc: Sequence[str | int], body: Any, *, missing: bool = False) -> str | None:
    """The request field a pydantic ``loc`` points at, as ``messages[0].content``.

    Union members appear in ``loc`` as type tags (``'str'``, ``'list[int]'``); walking the actual
    body keeps only the parts that exist in it, so the path names what the client sent.
    """
    parts = list(loc[1:] if loc and loc[0] == "body" else loc)
    kept: list[str | int] = []
    node = body
    for i, part in enumerate(parts):
        if isinstance(node, Mapping) and isinstance(part, str) and part in node:
            node = node[part]
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            node = node[part]
        elif isinstance(node, list) and isinstance(part, str):
            continue  # a union member's tag (``list[str]``) before an index into the list
        elif missing and i == len(parts) - 1 and isinstance(node, Mapping):
            pass  # a required field that is absent: still its name
        else:
            break
        kept.append(part)
    if not kept:
        return None
    text = ""
    for part in kept:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
    return text


def _top(path: str) -> str:
    return path.split(".")[0].split("[")[0]


def validation_error_response(exc: RequestValidationError) -> Response:
    """A pydantic/FastAPI validation failure as a 400 naming the first offending field (for a
    union field, which fails once per member, the deepest path inside it)."""
    errors = list(exc.errors())
    if not errors:
        return error_response(400, "Invalid request body.")
    first = errors[0]
    if first.get("type") == "json_invalid":
        ctx = first.get("ctx") or {}
        detail = ctx.get("error") or first.get("msg", "")
        return error_response(
            400,
            f"We could not parse the JSON body of your request ({detail}). "
            "The body must be valid JSON.",
            param=None,
            code="invalid_json",
        )
    missing = first.get("type") == "missing"
    chosen, param = first, field_path(first.get("loc", ()), exc.body, missing=missing)
    if param is not None and not missing:
        for other in errors[1:]:
            path = field_path(other.get("loc", ()), exc.body)
            if path is not None and _top(path) == _top(param) and len(path) > len(param):
                chosen, param = other, path
    msg = str(chosen.get("msg", "invalid value")).rstrip(".")
    if missing:
        message = f"Missing required parameter: '{param}'."
    elif param is None:
        message = f"Invalid request body: {msg}."
    else:
        message = f"Invalid type for '{param}': {msg}."
    return error_response(
        400, message, param=param, code="missing_required_parameter" if missing else "invalid_type"
    )


def install_error_handlers(app: FastAPI) -> None:
    """Route every failure through the OpenAI error shape."""

    @app.exception_handler(LogprobeError)
    async def _logprobe_error(request: Request, exc: LogprobeError) -> Response:
        if exc.status_code >= 500:
            logger.error("%s %s failed: %s", request.method, request.url.path, exc.message)
        return logprobe_error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> Response:
        return validation_error_response(exc)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if exc.status_code == 404:
            message = f"Invalid URL ({request.method} {request.url.path})."
        elif exc.status_code == 405:
            message = f"Method {request.method} is not allowed for {request.url.path}."
        else:
            message = str(exc.detail)
        kind = "invalid_request_error" if exc.status_code < 500 else "server_error"
        return error_response(exc.status_code, message, kind, headers=exc.headers)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        logger.exception("%s %s: unexpected error", request.method, request.url.path)
        return error_response(
            500,
            f"The server had an error while processing your request ({type(exc).__name__}).",
            "server_error",
        )


__all__ = [
    "AuthenticationError",
    "ServerBusyError",
    "error_body",
    "error_response",
    "field_path",
    "install_error_handlers",
    "logprobe_error_response",
    "validation_error_response",
]
