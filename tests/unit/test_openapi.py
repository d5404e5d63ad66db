"""The OpenAPI description covers every route the app registers."""

from __future__ import annotations

from media_server.api.openapi import document
from media_server.app import build_app, build_engine
from media_server.config import Settings


def test_every_route_is_described() -> None:
    app = build_app(Settings(), build_engine(Settings()))
    registered = {
        (route.method.lower(), route.resource.canonical)
        for route in app.router.routes()
        if route.resource is not None
        and not route.resource.canonical.startswith("/static")
        and route.method not in ("HEAD", "OPTIONS", "*")
    }
    described = {(method, path) for path, item in document()["paths"].items() for method in item}
    assert registered <= described, registered - described
    assert described <= registered, described - registered
