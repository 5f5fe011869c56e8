"""The viewer as a FastAPI router (mountable under ``/ui`` of any app) or a standalone app.

Assets are plain files in ``static/`` (no build step, no CDN), served by name from a fixed
list; every page is the one shell ``static/page.html.in`` with its title and script filled in. Every response carries a strict Content-Security-Policy (scripts and styles only
from the viewer itself, no inline script), and the pages put data in the DOM with
``textContent`` only.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from importlib import resources
from typing import Any

from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.responses import JSONResponse, RedirectResponse
from fastapi.routing import APIRoute

from ..errors import LogprobeError
from ..store import Store
from .api import add_api_routes
from .playground import EngineFactory, EngineHolder

CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}
PAGES = {"index": "Runs", "run": "Run", "response": "Response", "compare": "Compare runs",
         "calibration": "Calibration", "playground": "Playground"}
"""Page name (its script is ``static/<name>.js``) -> title."""
MEDIA_TYPES = {".css": "text/css; charset=utf-8", ".js": "text/javascript; charset=utf-8",
               ".html": "text/html; charset=utf-8", ".svg": "image/svg+xml"}


def _asset(name: str) -> bytes:
    return resources.files("logprobe.web").joinpath("static", name).read_bytes()


def _pages() -> dict[str, bytes]:
    shell = _asset("page.html.in").decode("utf-8")
    return {name: shell.replace("{title}", title).replace("{page}", name).encode("utf-8")
            for name, title in PAGES.items()}


def _assets() -> dict[str, bytes]:
    folder = resources.files("logprobe.web").joinpath("static")
    return {p.name: p.read_bytes() for p in folder.iterdir()
            if p.is_file() and p.name.rsplit(".", 1)[-1] in ("css", "js", "svg")}


class UIRoute(APIRoute):
    """Adds the security headers and turns logprobe errors into JSON error bodies."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def wrapped(request: Request) -> Response:
            try:
                response = await handler(request)
            except LogprobeError as e:
                response = JSONResponse(
                    {"error": {"message": e.message, "type": e.error_type, "param": e.param,
                               "code": e.code}}, status_code=e.status_code)
            response.headers.update(SECURITY_HEADERS)
            return response

        return wrapped


def create_ui_router(store: Store, engine: Any = None, *,
                     engine_factory: EngineFactory | None = None) -> APIRouter:
    """The viewer's routes; include it with a prefix, e.g. ``app.include_router(r,
    prefix="/ui")``. ``engine`` (or ``engine_factory``, called on first use) powers the
    playground; without either the playground says it is off."""
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
        return Response(assets[name], media_type=media,
                        headers={"Cache-Control": "no-cache"})

    add_api_routes(router, store, holder)
    return router


class PageNotFoundError(LogprobeError):
    status_code = 404


def _not_found(message: str) -> LogprobeError:
    return PageNotFoundError(message, code="not_found")


def mount_ui(app: FastAPI, store: Store, engine: Any = None, *, prefix: str = "/ui",
             engine_factory: EngineFactory | None = None) -> None:
    """Serve the viewer under ``prefix`` of ``app`` (e.g. ``logprobe serve``'s app)."""
    app.include_router(create_ui_router(store, engine, engine_factory=engine_factory),
                       prefix=prefix)


def create_ui_app(store: Store, engine: Any = None, *,
                  engine_factory: EngineFactory | None = None) -> FastAPI:
    """A standalone viewer app: the viewer under ``/ui/``, ``/`` redirecting there."""
    app = FastAPI(title="logprobe viewer", docs_url=None, redoc_url=None, openapi_url=None)
    mount_ui(app, store, engine, engine_factory=engine_factory)

    @app.get("/", include_in_schema=False)
    def root() -> RedirectResponse:
        return RedirectResponse("/ui/")

    return app
