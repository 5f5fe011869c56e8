"""HTTP for the remote engine: one httpx client, retries with exponential backoff on 429, 5xx,
timeouts and dropped connections (honouring ``Retry-After``), and server errors turned into
logprobe errors that carry the server's own message.

    4xx (400, 404, 409, 413, 422) -> InvalidRequestError (param = the server's ``param``)
    "maximum context length"     -> ContextOverflowError
    401, 403, 429, 5xx, network   -> ProviderError
"""

from __future__ import annotations

import email.utils
import json
import random
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx

from ..errors import ContextOverflowError, InvalidRequestError, LogprobeError, ProviderError

RETRY_STATUSES = frozenset({408, 409, 429, 500, 502, 503, 504})
MAX_RETRY_AFTER = 60.0
"""Longest ``Retry-After`` honoured; a server asking for more is reported, not waited for."""


def split_base_url(base_url: str) -> tuple[str, str]:
    """``(api base, server root)``: ``http://h:p`` -> ``(http://h:p/v1, http://h:p)``;
    a URL with a path is kept as the API base, and its trailing ``/v1`` is cut for the root."""
    if not isinstance(base_url, str) or not base_url.strip():
        raise InvalidRequestError("base_url must be a non-empty URL", param="base_url")
    parts = urlsplit(base_url.strip().rstrip("/"))
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise InvalidRequestError(
            f"base_url must be an http(s) URL like http://127.0.0.1:8000/v1, got {base_url!r}",
            param="base_url",
        )
    path = parts.path
    api = path if path else "/v1"
    root = api[: -len("/v1")] if api.endswith("/v1") else api
    return (
        urlunsplit((parts.scheme, parts.netloc, api, "", "")),
        urlunsplit((parts.scheme, parts.netloc, root, "", "")),
    )


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    max_retries: int = 2
    backoff: float = 0.5
    """First wait in seconds; doubles each retry (with up to 10% jitter)."""
    max_backoff: float = 20.0

    def wait(self, attempt: int, response: httpx.Response | None) -> float:
        after = retry_after(response) if response is not None else None
        if after is not None:
            return after
        base = min(self.backoff * (2**attempt), self.max_backoff)
        return base * (1.0 + 0.1 * random.random())


def retry_after(response: httpx.Response) -> float | None:
    """Seconds from a ``Retry-After`` (or ``retry-after-ms``) header; ``None`` if absent/bad."""
    ms = response.headers.get("retry-after-ms")
    if ms is not None:
        try:
            return max(float(ms) / 1000.0, 0.0)
        except ValueError:
            pass
    raw = response.headers.get("retry-after")
    if raw is None:
        return None
    try:
        return max(float(raw), 0.0)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(raw)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max((when - datetime.now(UTC)).total_seconds(), 0.0)


def one_line(text: str, limit: int = 400) -> str:
    """Whitespace (newlines of tracebacks included) collapsed, cut to ``limit`` characters."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


def server_message(response: httpx.Response) -> tuple[str, str | None, Any]:
    """``(message, param, code)`` from an error body of any common shape (OpenAI, vLLM, TGI,
    FastAPI ``detail``, plain text), the message on one line."""
    msg, param, code = _server_message(response)
    return one_line(msg), param, code


def _server_message(response: httpx.Response) -> tuple[str, str | None, Any]:
    try:
        body = response.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        text = response.text.strip()
        return (text[:500] or response.reason_phrase or "no message"), None, None
    err = body.get("error", body) if isinstance(body, Mapping) else body
    if isinstance(err, Mapping):
        msg = err.get("message") or err.get("detail") or err.get("error")
        if isinstance(msg, list):  # FastAPI 422: [{loc, msg, type}]
            msg = "; ".join(_detail_item(d) for d in msg)
        param = err.get("param")
        return (
            (str(msg) if msg else json.dumps(body)[:500]),
            (str(param) if param else None),
            err.get("code"),
        )
    return str(err)[:500], None, None


def _detail_item(d: Any) -> str:
    if isinstance(d, Mapping):
        loc = ".".join(str(x) for x in d.get("loc", ()) if x != "body")
        return f"{loc}: {d.get('msg')}" if loc else str(d.get("msg"))
    return str(d)


def error_for(response: httpx.Response, url: str, attempts: int) -> LogprobeError:
    status = response.status_code
    msg, param, code = server_message(response)
    where = f"{url} answered HTTP {status}"
    if "maximum context length" in msg or code == "context_length_exceeded":
        return ContextOverflowError(f"{where}: {msg}", param=param or "messages")
    if status in (401, 403):
        return ProviderError(
            f"{where} (authentication failed; check api_key / OPENAI_API_KEY): {msg}", param=param
        )
    if 400 <= status < 500 and status not in (408, 429):
        return InvalidRequestError(
            f"{where}: {msg}", param=param, code=code if isinstance(code, str) else None
        )
    tries = f" after {attempts} attempts" if attempts > 1 else ""
    return ProviderError(f"{where}{tries}: {msg}", param=param)


class HttpClient:
    """A thread-safe JSON client with retries, for one server."""

    def __init__(
        self,
        api_base: str,
        *,
        api_key: str | None,
        timeout: float,
        policy: RetryPolicy,
        sleep: Any = time.sleep,
    ) -> None:
        headers = {"Accept": "application/json", "User-Agent": "logprobe-remote"}
        if api_key:
            headers["Authorization"] = f"Bearer {api_key}"
        self.api_base = api_base
        self.policy = policy
        self._sleep = sleep
        self._client = httpx.Client(
            headers=headers,
            timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)),
        )

    def close(self) -> None:
        self._client.close()

    def url(self, path: str) -> str:
        return path if path.startswith("http") else f"{self.api_base}{path}"

    def post_json(self, path: str, body: Mapping[str, Any], *, retries: int | None = None) -> Any:
        """POST ``body``; the decoded JSON answer (errors raised as logprobe errors)."""
        with self._send(path, body, stream=False, retries=retries) as resp:
            try:
                return resp.json()
            except (json.JSONDecodeError, UnicodeDecodeError):
                raise ProviderError(
                    f"{self.url(path)} answered HTTP {resp.status_code} with a body that is not "
                    f"JSON: {resp.text[:200]!r}"
                ) from None

    @contextmanager
    def stream_lines(self, path: str, body: Mapping[str, Any]) -> Iterator[Iterator[str]]:
        """POST ``body`` and yield the response's text lines as they arrive (for SSE)."""
        with self._send(path, body, stream=True, retries=None) as resp:
            yield self._lines(resp, path)

    def _lines(self, resp: httpx.Response, path: str) -> Iterator[str]:
        try:
            yield from resp.iter_lines()
        except httpx.TimeoutException as e:
            raise ProviderError(
                f"{self.url(path)} stopped sending (timeout mid-stream): {e}"
            ) from None
        except httpx.TransportError as e:
            raise ProviderError(f"{self.url(path)} dropped the stream: {e}") from None

    @contextmanager
    def _send(
        self, path: str, body: Mapping[str, Any], *, stream: bool, retries: int | None
    ) -> Iterator[httpx.Response]:
        url = self.url(path)
        limit = self.policy.max_retries if retries is None else retries
        attempt = 0
        while True:
            resp = self._attempt(url, body, stream, attempt, limit)
            if resp is None:
                attempt += 1
                continue
            try:
                yield resp
            finally:
                resp.close()
            return

    def _attempt(
        self, url: str, body: Mapping[str, Any], stream: bool, attempt: int, limit: int
    ) -> httpx.Response | None:
        """One try: the response, or ``None`` after sleeping when it should be retried."""
        try:
            req = self._client.build_request("POST", url, json=body)
            resp = self._client.send(req, stream=stream)
        except httpx.TimeoutException as e:
            self._wait_or_raise(
                attempt, limit, None, ProviderError(f"{url} timed out: {e or 'no answer'}")
            )
            return None
        except httpx.TransportError as e:
            self._wait_or_raise(attempt, limit, None, ProviderError(f"cannot reach {url}: {e}"))
            return None
        if resp.status_code < 400:
            return resp
        if stream:
            resp.read()
        resp.close()
        err = error_for(resp, url, attempt + 1)
        if resp.status_code not in RETRY_STATUSES:
            raise err
        self._wait_or_raise(attempt, limit, resp, err)
        return None

    def _wait_or_raise(
        self, attempt: int, limit: int, resp: httpx.Response | None, err: LogprobeError
    ) -> None:
        """Sleep before the next try, or raise ``err`` when no try is left."""
        if attempt >= limit:
            raise err
        wait = self.policy.wait(attempt, resp)
        if wait > MAX_RETRY_AFTER:
            raise ProviderError(
                f"{err.message} (the server asks to retry after {wait:.0f} s)", param=err.param
            )
        self._sleep(wait)
