"""The viewer as a FastAPI router (mountable under ``/ui`` of any app) or a standalone app.

Assets are plain files in ``static/`` (no build step, no CDN), served by name from a fixed
list; every page is the one shell ``static/page.html.in`` with its title and script filled in.
Every response carries a strict Content-Security-Policy (scripts and styles only
from the viewer itself, no inline script), and the pages put data in the DOM with
``textContent`` only.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from importlib import resources
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.responses import RedirectResponse
from fastapi.routing import APIRoute

from ..errors import LogprobeError
from ..server.auth import AuthMiddleware, KeyAuth
from ..server.errors import install_error_handlers, logprobe_error_response
from ..server.limits import DEFAULT_MAX_BODY_BYTES, BodyLimitMiddleware
from ..server.streaming import Admission, ServerStats
from ..store import Store
from .api import add_api_routes
from .login import add_login_routes
from .playground import EngineFactory, EngineHolder

if TYPE_CHECKING:
    from ..engines.base import Engine

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}
PAGES = {
    "index": "Runs",
    "run": "Run",
    "response": "Response",
    "compare": "Compare runs",
    "calibration": "Calibration",
    "playground": "Playground",
}
"""Page name (its script is ``static/<name>.js``) -> title."""
DEFAULT_PLAYGROUND_QUEUE = 8
"""Playground generations in flight in a standalone viewer before new ones get a 429."""
MEDIA_TYPES = {
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".html": "text/html; charset=utf-8",
    ".svg": "image/svg+xml",
}


def _asset(name: str) -> bytes:
    return resources.files("logprobe.web").joinpath("static", name).read_bytes()


def _pages() -> dict[str, bytes]:
    shell = _asset("page.html.in").decode("utf-8")
    return {
        name: shell.replace("{title}", title).replace("{page}", name).encode("utf-8")
        for name, title in PAGES.items()
    }


def _assets() -> dict[str, bytes]:
    folder = resources.files("logprobe.web").joinpath("static")
    return {
        p.name: p.read_bytes()
        for p in folder.iterdir()
        if p.is_file() and p.name.rsplit(".", 1)[-1] in ("css", "js", "svg")
    }


class UIRoute(APIRoute):
    """Adds the security headers and turns logprobe errors into JSON error bodies."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def wrapped(request: Request) -> Response:
            try:
                response = await handler(request)
            except LogprobeError as e:
                response = logprobe_error_response(e)
            response.headers.update(SECURITY_HEADERS)
            return response

        return wrapped


def create_ui_router(
    store: Store,
    engine: Engine | None = None,
    *,
    engine_factory: EngineFactory | None = None,
    auth: KeyAuth | None = None,
    admission: Admission | None = None,
    stats: ServerStats | None = None,
    max_queue: int = DEFAULT_PLAYGROUND_QUEUE,
) -> APIRouter:
    """The viewer's routes; include it with a prefix, e.g. ``app.include_router(r,
    prefix="/ui")``. ``engine`` (or ``engine_factory``, called on first use) powers the
    playground; without either the playground says it is off. ``auth`` (the app's
    :class:`~logprobe.server.auth.KeyAuth`) signs the login cookie and CSRF tokens; the
    playground takes its slots from ``admission`` (the server's, so ``/v1`` and the playground
    share one queue), else from its own of ``max_queue``."""
    auth = auth if auth is not None else KeyAuth(None)
    stats = stats if stats is not None else ServerStats()
    admission = admission if admission is not None else Admission(max_queue, stats)
    router = APIRouter(route_class=UIRoute)
    holder = EngineHolder(engine, engine_factory)
    assets = _assets()
    pages = _pages()

    @router.get("/", include_in_schema=False)
    def index() -> Response:
        return Response(pages["index"], media_type=MEDIA_TYPES[".html"])

    @router.get("/{page}.html", include_in_schema=False)
    def page(page: str) -> Response:
        if page not in pages:
            raise _not_found(f"no page {page!r}")
        return Response(pages[page], media_type=MEDIA_TYPES[".html"])

    @router.get("/static/{name}", include_in_schema=False)
    def static(name: str) -> Response:
        if name not in assets:
            raise _not_found(f"no asset {name!r}")
        media = MEDIA_TYPES.get("." + name.rsplit(".", 1)[-1], "application/octet-stream")
        return Response(assets[name], media_type=media, headers={"Cache-Control": "no-cache"})

    add_login_routes(router, auth)
    add_api_routes(router, store, holder, auth, admission, stats)
    return router


class PageNotFoundError(LogprobeError):
    status_code = 404


def _not_found(message: str) -> LogprobeError:
    return PageNotFoundError(message, code="not_found")


def mount_ui(
    app: FastAPI,
    store: Store,
    engine: Engine | None = None,
    *,
    prefix: str = "/ui",
    engine_factory: EngineFactory | None = None,
    auth: KeyAuth | None = None,
    admission: Admission | None = None,
    stats: ServerStats | None = None,
) -> None:
    """Serve the viewer under ``prefix`` of ``app`` (e.g. ``logprobe serve``'s app). The app
    must put :class:`~logprobe.server.auth.AuthMiddleware` with the same ``auth`` in front when
    it has a key (``create_app`` and :func:`create_ui_app` do)."""
    if auth is not None and auth.ui_prefix != prefix.rstrip("/"):
        raise ValueError(f"auth is for a viewer under {auth.ui_prefix!r}, not {prefix!r}")
    app.include_router(
        create_ui_router(
            store,
            engine,
            engine_factory=engine_factory,
            auth=auth,
            admission=admission,
            stats=stats,
        ),
        prefix=prefix,
    )


def create_ui_app(
    store: Store,
    engine: Engine | None = None,
    *,
    engine_factory: EngineFactory | None = None,
    api_key: str | None = None,
    max_queue: int = DEFAULT_PLAYGROUND_QUEUE,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
) -> FastAPI:
    """A standalone viewer app: the viewer under ``/ui/``, ``/`` redirecting there. With
    ``api_key`` every route needs the key (a login page sets the session cookie)."""
    app = FastAPI(title="logprobe viewer", docs_url=None, redoc_url=None, openapi_url=None)
    auth = KeyAuth(api_key)
    app.state.auth = auth
    install_error_handlers(app)
    stats = ServerStats()
    app.state.stats = stats
    mount_ui(
        app,
        store,
        engine,
        engine_factory=engine_factory,
        auth=auth,
        stats=stats,
        admission=Admission(max_queue, stats),
    )
    app.add_middleware(BodyLimitMiddleware, max_body_bytes=max_body_bytes)
    app.add_middleware(AuthMiddleware, auth=auth)

    @app.get("/", include_in_schema=False)
    def root() -> RedirectResponse:
        return RedirectResponse("/ui/")

    return app
