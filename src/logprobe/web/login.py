"""The viewer's login page and its session/CSRF endpoints (see :mod:`logprobe.server.auth`).

``GET login`` shows a one-field form (no script: it works under the strictest CSP);
``POST login`` checks the key, sets the HttpOnly, SameSite=Strict session cookie and sends the
browser back where it was going; ``POST logout`` clears it; ``GET api/session`` gives the page
its CSRF token. :func:`require_csrf` guards the viewer's writes.
"""

from __future__ import annotations

import html
from urllib.parse import parse_qs, urlsplit

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse

from ..errors import LogprobeError
from ..server.auth import CSRF_HEADER, SESSION_COOKIE, KeyAuth
from ..server.errors import AuthenticationError

MAX_FORM_BYTES = 8192

_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>logprobe · log in</title>
<link rel="stylesheet" href="static/style.css">
</head>
<body data-page="login">
<header class="top"><span class="brand">logprobe</span></header>
<main id="app">
<h1>Log in</h1>
<p class="muted">This server needs its API key (the one given to <code>--api-key</code>).</p>
{error}<form method="post" action="login" class="card" id="login-form">
<input type="hidden" name="next" value="{next}">
<label>API key <input type="password" name="key" id="key" autocomplete="current-password"
 required autofocus></label>
<button type="submit" class="primary" id="login">Log in</button>
</form>
</main>
</body>
</html>
"""


class CSRFError(LogprobeError):
    status_code = 403
    error_type = "invalid_request_error"


def safe_next(target: str | None, auth: KeyAuth) -> str:
    """Where to go after logging in: a path inside the viewer, never another site."""
    home = auth.ui_prefix + "/"
    if not target or not target.startswith(home) or "//" in target or "\\" in target:
        return home
    if any(ord(c) < 0x20 for c in target):
        return home
    return target


def _page(next_: str, error: str | None, status: int) -> HTMLResponse:
    box = (
        f'<div class="error" role="alert" id="login-error">{html.escape(error)}</div>\n'
        if error
        else ""
    )
    body = _PAGE.replace("{error}", box).replace("{next}", html.escape(next_, quote=True))
    return HTMLResponse(body, status_code=status, headers={"Cache-Control": "no-store"})


def same_origin(request: Request) -> bool:
    """False only when the browser says the request came from another origin."""
    origin = request.headers.get("origin")
    if origin is None or origin == "null":
        # none: same-origin GETs and non-browser clients; "null": the viewer's own form posts
        # under Referrer-Policy: no-referrer (and opaque origins, which the CSRF token stops)
        return True
    parts = urlsplit(origin)
    return parts.netloc == request.headers.get("host") and parts.scheme in ("http", "https")


def require_csrf(request: Request, auth: KeyAuth) -> None:
    """A viewer write must come from the viewer itself: same origin, and (unless it carries the
    Bearer key, which browsers never add on their own) the CSRF token of its session."""
    if auth.bearer_ok(request.headers.get("authorization", "").encode("latin-1") or None):
        return
    if not same_origin(request):
        raise CSRFError("cross-origin request refused", param="origin", code="csrf_failed")
    token = request.headers.get(CSRF_HEADER)
    if not auth.csrf_ok(request.cookies.get(SESSION_COOKIE), token):
        raise CSRFError(
            f"missing or wrong {CSRF_HEADER} header (reload the page)",
            param=CSRF_HEADER,
            code="csrf_failed",
        )


def add_login_routes(router: APIRouter, auth: KeyAuth) -> None:
    @router.get("/login", include_in_schema=False)
    def login_page(next: str | None = None) -> Response:  # noqa: A002 - the query name
        if not auth.enabled:
            return RedirectResponse(safe_next(next, auth), status_code=303)
        return _page(safe_next(next, auth), None, 200)

    @router.post("/login", include_in_schema=False)
    async def login(request: Request) -> Response:
        raw = await request.body()
        form = parse_qs(raw[:MAX_FORM_BYTES].decode("utf-8", "replace"))
        target = safe_next((form.get("next") or [""])[0], auth)
        if not auth.enabled:
            return RedirectResponse(target, status_code=303)
        if not same_origin(request):
            return _page(target, "cross-origin login refused", 403)
        if not auth.key_ok((form.get("key") or [""])[0]):
            return _page(target, "wrong key", 401)
        response = RedirectResponse(target, status_code=303)
        response.set_cookie(
            SESSION_COOKIE,
            auth.new_session(),
            max_age=auth.ttl_s,
            path=auth.ui_prefix,
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
        )
        return response

    @router.post("/logout", include_in_schema=False)
    def logout(request: Request) -> Response:
        require_csrf(request, auth)
        response = Response(status_code=204)
        response.delete_cookie(
            SESSION_COOKIE, path=auth.ui_prefix, httponly=True, samesite="strict"
        )
        return response

    @router.get("/api/session")
    def session(request: Request) -> dict[str, object]:
        if auth.enabled and not auth.authorized(request.scope):  # pragma: no cover - middleware
            raise AuthenticationError("log in first")
        return {"auth": auth.enabled, "csrf": auth.csrf_token(request.cookies.get(SESSION_COOKIE))}


__all__ = ["CSRFError", "add_login_routes", "require_csrf", "safe_next", "same_origin"]
