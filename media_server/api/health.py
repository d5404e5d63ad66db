"""Liveness and readiness."""

from __future__ import annotations

from aiohttp import web

from media_server.api.app_keys import ENGINE


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    engine = request.app[ENGINE]
    body = {"status": engine.state, "backend": engine.backend_name}
    return web.json_response(body, status=200 if engine.health() else 503)


def add_routes(app: web.Application) -> None:
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
