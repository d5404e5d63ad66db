"""Typed application state (aiohttp `AppKey`s) shared by the routes; API keys are in `security.py`."""

from __future__ import annotations

from aiohttp import web

from media_server.config import Settings
from media_server.engine.seam import Engine
from media_server.observability.metrics import Metrics

ENGINE = web.AppKey("engine", Engine)
SETTINGS = web.AppKey("settings", Settings)
METRICS = web.AppKey("metrics", Metrics)
