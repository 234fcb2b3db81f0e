"""The served OpenAPI document and the real admin routes agree (the console's static files are not API)."""

from __future__ import annotations

from typing import Any

from control_plane.admin.console import is_console_path
from control_plane.admin.openapi import spec
from control_plane.admin.routes import AdminDeps, build_admin_app


def test_openapi_matches_routes() -> None:
    deps: Any = AdminDeps(None, None, None, None, None, "n", None, None)  # type: ignore[arg-type]
    app = build_admin_app(deps, "token")
    served = {
        (route.resource.canonical, route.method.lower())
        for route in app.router.routes()
        if route.resource is not None and route.method != "HEAD" and not is_console_path(route.resource.canonical)
    }
    documented = {(path, method) for path, ops in spec()["paths"].items() for method in ops}
    assert served == documented
