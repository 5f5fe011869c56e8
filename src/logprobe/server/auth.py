"""One key for everything a server exposes.

With an API key, every route except ``GET /health`` needs it:

- API clients send ``Authorization: Bearer KEY`` (as OpenAI's SDKs do);
- the web viewer's browser sends a session cookie that its login page set after the key was
  typed in: ``<expiry>.<HMAC-SHA256(key, "session|<expiry>")>``, HttpOnly, SameSite=Strict,
  scoped to the viewer's path. The server keeps no session state: the cookie proves it was
  issued by someone who knew the key, until it expires; changing the key revokes every cookie;
- viewer writes (the playground's POST) also carry a CSRF token,
  ``HMAC(secret, "csrf|<session cookie>")``, read by the page from ``api/session`` (a
  same-origin read other sites cannot make) and sent back in the ``X-CSRF-Token`` header, a
  custom header no cross-site form or simple request can set. Without a key the secret is random
  per process, so the check still stops other web pages from driving a local viewer.

Unauthenticated browsers asking for a viewer page are redirected to the login page; everything
else gets a 401 in OpenAI's error shape before the request body is read.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from urllib.parse import quote

from starlette.requests import cookie_parser
from starlette.responses import RedirectResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from .errors import AuthenticationError, logprobe_error_response

SESSION_COOKIE = "logprobe_session"
SESSION_TTL_S = 12 * 3600
CSRF_HEADER = "X-CSRF-Token"
OPEN_PATHS = frozenset({"/health"})
"""Paths answered without the key (besides the viewer's login page and stylesheet)."""


class KeyAuth:
    """Checks the API key, issues and verifies session cookies and CSRF tokens.

    ``api_key=None`` disables authentication (every request is allowed) but still signs CSRF
    tokens with a random per-process secret. ``ui_prefix`` is where the viewer is mounted: its
    login page and stylesheet stay open, and the session cookie is valid only below it.
    """

    def __init__(
        self, api_key: str | None, *, ui_prefix: str = "/ui", ttl_s: int = SESSION_TTL_S
    ) -> None:
        self.api_key = api_key or None
        self.ui_prefix = ui_prefix.rstrip("/")
        self.ttl_s = ttl_s
        self._secret = api_key.encode("utf-8") if api_key else secrets.token_bytes(32)
        self._bearer = f"Bearer {api_key}".encode() if api_key else b""

    @property
    def enabled(self) -> bool:
        return self.api_key is not None

    @property
    def open_paths(self) -> frozenset[str]:
        p = self.ui_prefix
        return OPEN_PATHS | {f"{p}/login", f"{p}/static/style.css"}

    def _mac(self, purpose: str, value: str) -> str:
        return hmac.new(self._secret, f"{purpose}|{value}".encode(), hashlib.sha256).hexdigest()

    def key_ok(self, given: str) -> bool:
        """Whether ``given`` is the API key (constant-time)."""
        return self.api_key is not None and hmac.compare_digest(
            given.encode("utf-8", "surrogateescape"), self.api_key.encode("utf-8")
        )

    def bearer_ok(self, header: bytes | None) -> bool:
        return (
            header is not None and bool(self._bearer) and hmac.compare_digest(header, self._bearer)
        )

    def new_session(self, now: float | None = None) -> str:
        expires = int(now if now is not None else time.time()) + self.ttl_s
        return f"{expires}.{self._mac('session', str(expires))}"

    def session_ok(self, cookie: str | None, now: float | None = None) -> bool:
        if not self.enabled or not cookie or "." not in cookie:
            return False
        expires, mac = cookie.split(".", 1)
        if not expires.isdigit() or int(expires) < (now if now is not None else time.time()):
            return False
        return hmac.compare_digest(mac, self._mac("session", expires))

    def csrf_token(self, session: str | None) -> str:
        return self._mac("csrf", session or "")

    def csrf_ok(self, session: str | None, token: str | None) -> bool:
        return bool(token) and hmac.compare_digest(str(token), self.csrf_token(session))

    def in_ui(self, path: str) -> bool:
        return path == self.ui_prefix or path.startswith(self.ui_prefix + "/")

    def authorized(self, scope: Scope) -> bool:
        """Whether the request carries the key: a Bearer header anywhere, or a valid session
        cookie on a viewer path."""
        if not self.enabled:
            return True
        headers = dict(scope.get("headers") or [])
        if self.bearer_ok(headers.get(b"authorization")):
            return True
        if self.in_ui(scope["path"]):
            return self.session_ok(session_cookie(headers.get(b"cookie")))
        return False


def session_cookie(raw: bytes | None) -> str | None:
    if not raw:
        return None
    return cookie_parser(raw.decode("latin-1")).get(SESSION_COOKIE)


def _wants_page(scope: Scope, auth: KeyAuth) -> bool:
    """A browser navigating to a viewer page (sent to the login page rather than a 401)."""
    if scope["method"] not in ("GET", "HEAD"):
        return False
    path = scope["path"]
    if path == "/" or (
        auth.in_ui(path)
        and (path.endswith("/") or path.endswith(".html") or path == auth.ui_prefix)
    ):
        accept = dict(scope.get("headers") or []).get(b"accept", b"")
        return b"text/html" in accept
    return False


class AuthMiddleware:
    """Refuses every request without the key (401, before the body is read), except
    :data:`OPEN_PATHS` and the viewer's login page and stylesheet."""

    def __init__(self, app: ASGIApp, auth: KeyAuth) -> None:
        self.app = app
        self.auth = auth
        self._open = auth.open_paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or not self.auth.enabled
            or scope["path"] in self._open
            or self.auth.authorized(scope)
        ):
            await self.app(scope, receive, send)
            return
        if _wants_page(scope, self.auth):
            target = scope["path"] + (
                "?" + scope["query_string"].decode("latin-1") if scope.get("query_string") else ""
            )
            response = RedirectResponse(
                f"{self.auth.ui_prefix}/login?next={quote(target, safe='')}", status_code=303
            )
            await response(scope, receive, send)
            return
        given = dict(scope["headers"]).get(b"authorization")
        msg = (
            "You didn't provide an API key. Send it as 'Authorization: Bearer KEY'."
            if given is None
            else "Incorrect API key provided."
        )
        refusal = logprobe_error_response(AuthenticationError(msg))
        refusal.headers["WWW-Authenticate"] = "Bearer"
        await refusal(scope, receive, send)


__all__ = [
    "CSRF_HEADER",
    "OPEN_PATHS",
    "SESSION_COOKIE",
    "SESSION_TTL_S",
    "AuthMiddleware",
    "KeyAuth",
    "session_cookie",
]
