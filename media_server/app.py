"""Composition root: builds the aiohttp application and wires every part together.

The one-shot HTTP routes (`api/`) read the engine, settings and metrics from
typed app state; the long-lived session transports (`transports/`, and the
WebRTC peers through signaling's attach callback) are handed them here.

Lifecycle is cleanup contexts: the engine loads in the background
(so `/healthz` answers at once and `/readyz` turns 200 when the voice is
warm), the Wyoming server listens with `WYOMING_PORT`, and the peer registry
closes every peer on shutdown.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
from collections.abc import AsyncIterator, Callable

from aiohttp import web

from media_server.api import (
    captioned,
    cartesia_bytes,
    dictionaries,
    health,
    jambonz,
    openapi,
    security,
    speech,
    static,
    voices,
)
from media_server.api.app_keys import ENGINE, METRICS, SETTINGS
from media_server.api.body_deadline import body_deadline
from media_server.api.errors import error_middleware
from media_server.config import Settings
from media_server.engine.front import EngineFront
from media_server.engine.seam import Engine
from media_server.errors import ConfigError
from media_server.json_input import decode_json
from media_server.observability.logging import echo_request_id, request_id_middleware
from media_server.observability.metrics import Metrics, metrics_handler
from media_server.rtc.peer import speech_attacher
from media_server.transports import announce, cartesia, control, plivo, telephony, vonage, websocket, wyoming
from media_server.transports import jambonz as jambonz_stream
from media_server.transports.audiosocket import audiosocket_server
from media_server.transports.call import CallServices
from media_server.transports.call_registry import CallRegistry
from signaling import routes as signaling_routes
from signaling.offer import CandidatePolicy
from signaling.registry import PeerRegistry, RegistryLimits
from signaling.turn import TurnServers

log = logging.getLogger(__name__)


async def _engine_ctx(app: web.Application) -> AsyncIterator[None]:
    engine = app[ENGINE]
    starting = asyncio.create_task(_start(engine), name="engine-start")
    yield
    starting.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await starting
    await engine.stop()


async def _start(engine: Engine) -> None:
    try:
        seconds = await engine.start()
    except Exception:
        log.exception("the %s backend failed to load", engine.backend_name)
        raise
    if seconds is None:
        log.info("%s backend will load on first use (PRELOAD_MODEL=false)", engine.backend_name)
    else:
        log.info("voices: %s", ", ".join(voice.id for voice in engine.voices()))


async def _wyoming_ctx(app: web.Application) -> AsyncIterator[None]:
    """The Wyoming server, with `WYOMING_PORT` (started after the engine, stopped before it), announced over
    mDNS with `WYOMING_ZEROCONF`."""
    settings = app[SETTINGS]
    if not settings.wyoming_port:
        yield
        return
    async with contextlib.AsyncExitStack() as stack:
        await stack.enter_async_context(wyoming.wyoming_server(app[ENGINE], settings, app[METRICS]))
        if settings.wyoming_zeroconf is not None:
            await stack.enter_async_context(announce.announced(settings.wyoming_zeroconf, settings))
        yield


async def _registry_ctx(app: web.Application) -> AsyncIterator[None]:
    registry = app[signaling_routes.REGISTRY_KEY]
    registry.start()
    yield
    await registry.stop(grace_s=app[SETTINGS].shutdown_grace)


def _audiosocket_ctx(services: CallServices, settings: Settings) -> Callable[[web.Application], AsyncIterator[None]]:
    """The AudioSocket listener on `AUDIOSOCKET_PORT` (started after the engine, stopped before it)."""
    # The protocol carries no API key: with keys set a call is any key's, without them its Asterisk's address's.
    owner_of_address = (lambda address: None) if settings.api_keys else security.address_principal

    async def serve(app: web.Application) -> AsyncIterator[None]:
        async with audiosocket_server(services, settings.host, settings.audiosocket_port, owner_of_address):
            yield

    return serve


def _candidate_policy(settings: Settings) -> CandidatePolicy:
    """Which ICE candidates of an offer the server checks; private ones by default only on a development machine."""
    try:
        networks = tuple(ipaddress.ip_network(entry, strict=False) for entry in settings.rtc_candidate_networks)
    except ValueError as exc:
        raise ConfigError(f"RTC_CANDIDATE_NETWORKS: {exc}") from exc
    private = settings.rtc_private_candidates
    return CandidatePolicy(
        max_candidates=settings.rtc_max_remote_candidates,
        allow_private=settings.listens_on_loopback if private is None else private,
        networks=networks,
    )


def build_engine(settings: Settings) -> EngineFront:
    """The engine front over the core `MODE` names: in this process, in a supervised worker (`gateway`), or in
    Ray Serve replicas (`ray`)."""
    # Imported here, not at the top: a gateway process must never load the model's libraries, and only
    # `ray` mode needs Ray.
    if settings.mode == "gateway":
        from media_server.gateway.remote import RemoteCore

        return EngineFront(RemoteCore(settings), settings)
    if settings.mode == "ray":
        from media_server.gateway.ray.core import RayCore

        return EngineFront(RayCore(settings), settings)
    from media_server.engine.core import LocalCore

    return EngineFront(LocalCore(settings), settings)


def build_app(settings: Settings, engine: Engine) -> web.Application:
    calls = CallRegistry()
    metrics = Metrics(engine_stats=engine.stats, live_peers=lambda: len(registry), live_calls=lambda: len(calls))
    engine.observe(metrics)
    app = web.Application(
        middlewares=[metrics.middleware, request_id_middleware, error_middleware, body_deadline(settings.body_timeout)],
        client_max_size=settings.max_body_bytes,
    )
    security.install(app, settings)
    app.on_response_prepare.append(echo_request_id)
    app[SETTINGS] = settings
    app[ENGINE] = engine
    app[METRICS] = metrics
    app.router.add_get("/metrics", metrics_handler(metrics))
    registry = PeerRegistry(
        attach=speech_attacher(engine, settings, metrics),
        ice_servers=settings.rtc_ice_servers,
        limits=RegistryLimits(
            max_peers=settings.max_peers,
            connect_timeout_s=settings.rtc_connect_timeout,
            idle_timeout_s=settings.rtc_idle_timeout,
            max_sdp_bytes=settings.max_sdp_bytes,
            max_peers_per_ip=settings.max_peers_per_ip,
            candidates=_candidate_policy(settings),
            ice_checks_per_second=settings.rtc_ice_checks_per_second,
        ),
    )
    turn = None
    if settings.turn_secret and settings.turn_urls:
        turn = TurnServers(settings.turn_urls, settings.turn_secret, settings.turn_ttl)
    signaling_routes.add_routes(
        app, registry, turn, owner=security.principal, decode_json=lambda raw: decode_json(raw, "body")
    )
    health.add_routes(app)
    speech.add_routes(app)
    voices.add_routes(app)
    dictionaries.add_routes(app)
    cartesia_bytes.add_routes(app)
    captioned.add_routes(app)
    security.add_websocket_route(app, websocket.PATH, websocket.tts_socket(engine, settings, metrics))
    security.add_websocket_route(app, cartesia.PATH, cartesia.cartesia_socket(engine, settings, metrics))
    services = CallServices.from_settings(engine, settings, metrics, calls)
    owner = security.principal
    for dialect in (telephony.TWILIO, telephony.TELNYX):
        security.add_websocket_route(
            app, dialect.path, telephony.media_streams_socket(dialect, services, settings, owner)
        )
    security.add_websocket_route(app, plivo.PATH, plivo.plivo_socket(services, settings, owner))
    security.add_websocket_route(app, vonage.PATH, vonage.vonage_socket(services, settings, owner))
    security.add_websocket_route(app, control.PATH, control.call_control_socket(calls, settings, owner))
    security.add_websocket_route(app, jambonz_stream.PATH, jambonz_stream.jambonz_socket(engine, settings, metrics))
    jambonz.add_routes(app)
    openapi.add_routes(app)
    static.add_routes(app)
    app.cleanup_ctx.append(_engine_ctx)
    app.cleanup_ctx.append(_wyoming_ctx)
    app.cleanup_ctx.append(_registry_ctx)
    if settings.audiosocket_port:
        app.cleanup_ctx.append(_audiosocket_ctx(services, settings))
    return app
