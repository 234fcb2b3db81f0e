"""The operator console's static files (package data) and the browser-facing protections of the admin server.

The console is plain HTML, JS and CSS under `control_plane/console/`, found with importlib.resources so that a
wheel carries it. Its files are open (they hold no data); every call they make to `/v1` carries the admin token
in the Authorization header, which a cross-site page cannot add. Writes that a browser sends carry an Origin:
one that is not this server's own is refused with 403, a second guard against cross-site requests.
"""

from __future__ import annotations

import re
from importlib.resources import files

from aiohttp import web
from aiohttp.typedefs import Middleware

from control_plane.admin.http import Handler, error_response

CONSOLE_FILES = files("control_plane.console")
PREFIX = "/console/"
CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
}
_NAME = re.compile(r"^[a-z0-9-]+\.(html|js|css|svg)$")  # flat names only: nothing can walk out of the package
# No inline script or style, nothing from elsewhere, never in a frame.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
    "font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def is_console_path(path: str) -> bool:
    """True for `/console` and the console's files under `/console/`."""
    return path == PREFIX.rstrip("/") or path.startswith(PREFIX)


def open_console(auth: Middleware) -> Middleware:
    """`auth` for every path but the console's files, which hold no data (like /metrics) and are open."""

    @web.middleware
    async def check(request: web.Request, handler: Handler) -> web.StreamResponse:
        if is_console_path(request.path):
            return await handler(request)
        return await auth(request, handler)

    return check


async def console_file(request: web.Request) -> web.StreamResponse:
    """GET /console/{name}: one of the console's files with the strict headers; index.html for `/console/`."""
    name = request.match_info.get("name") or "index.html"
    resource = CONSOLE_FILES / name
    if not _NAME.match(name) or not resource.is_file():
        raise web.HTTPNotFound()
    content_type = CONTENT_TYPES["." + name.rsplit(".", 1)[1]]
    return web.Response(body=resource.read_bytes(), headers={"Content-Type": content_type, **SECURITY_HEADERS})


async def console_redirect(request: web.Request) -> web.StreamResponse:
    raise web.HTTPFound(PREFIX)


@web.middleware
async def origin_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Refuses a write whose Origin header names another site (or `null`); requests without one pass."""
    origin = request.headers.get("Origin")
    if request.method not in SAFE_METHODS and origin is not None and origin != _own_origin(request):
        return error_response(403, "cross_origin", f"writes from origin {origin!r} are refused", "origin")
    return await handler(request)


def _own_origin(request: web.Request) -> str:
    return f"{request.scheme}://{request.host}"


def add_console_routes(app: web.Application) -> None:
    """`/console/` and its files on the admin app."""
    app.router.add_get("/console", console_redirect)
    app.router.add_get(PREFIX, console_file)
    app.router.add_get(PREFIX + "{name}", console_file)
