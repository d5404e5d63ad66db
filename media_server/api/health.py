"""Liveness, readiness and the voice list."""

from __future__ import annotations

from dataclasses import asdict

from aiohttp import web

from media_server.api.keys import ENGINE


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    engine = request.app[ENGINE]
    body = {"status": engine.state, "backend": engine.backend_name}
    return web.json_response(body, status=200 if engine.health() else 503)


async def voices(request: web.Request) -> web.Response:
    return web.json_response({"voices": [asdict(voice) for voice in request.app[ENGINE].voices()]})


def add_routes(app: web.Application) -> None:
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/v1/voices", voices)
