"""HTTP routes of the signaling service: /rtc/config, /rtc/offer, /rtc/sessions/{id}.

`add_routes` takes an `Owner`: who a request speaks for. A session belongs to
the owner of the offer that made it, and only a request of that owner may
hang it up. By default the owner is the client address.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from aiohttp import web

from signaling.errors import BadOffer
from signaling.registry import PeerRegistry
from signaling.turn import TurnServers

Owner = Callable[[web.Request], str | None]

REGISTRY_KEY = web.AppKey("peer_registry", PeerRegistry)
TURN_KEY = web.AppKey("turn_servers", TurnServers)
OWNER_KEY = web.AppKey[Owner]("peer_owner")


def client_address(request: web.Request) -> str | None:
    return request.remote


JsonDecoder = Callable[[bytes], Any]
DECODE_JSON_KEY: web.AppKey[JsonDecoder] = web.AppKey("decode_json")


async def rtc_config(request: web.Request) -> web.Response:
    """The ICE servers for a client; with TURN configured, fresh short-lived TURN credentials and their `ttl`."""
    servers = list(request.app[REGISTRY_KEY].ice_servers)
    config: dict[str, Any] = {"iceServers": servers}
    turn = request.app.get(TURN_KEY)
    if turn is not None:
        servers.append(turn.ice_server())
        config["ttl"] = turn.ttl_s
    return web.json_response(config)


async def rtc_offer(request: web.Request) -> web.Response:
    try:
        offer = request.app[DECODE_JSON_KEY](await request.read())
    except ValueError as exc:
        raise BadOffer(f"body: not valid JSON ({exc})") from exc
    if not isinstance(offer, dict):
        raise BadOffer("body: expected a JSON object {sdp, type}")
    owner = request.app[OWNER_KEY](request)
    return web.json_response(await request.app[REGISTRY_KEY].answer(offer, client=request.remote, owner=owner))


async def rtc_hang_up(request: web.Request) -> web.Response:
    owner = request.app[OWNER_KEY](request)
    await request.app[REGISTRY_KEY].hang_up(request.match_info["session_id"], owner)
    return web.json_response({"status": "closed"})


def add_routes(
    app: web.Application,
    registry: PeerRegistry,
    turn: TurnServers | None = None,
    owner: Owner = client_address,
    decode_json: JsonDecoder = json.loads,
) -> None:
    """Add the routes; `owner` says who a request speaks for, `decode_json` reads offer bodies (the host's
    bounded decoder, which may raise its own errors for its error middleware to answer)."""
    app[REGISTRY_KEY] = registry
    app[OWNER_KEY] = owner
    app[DECODE_JSON_KEY] = decode_json
    if turn is not None:
        app[TURN_KEY] = turn
    app.router.add_get("/rtc/config", rtc_config)
    app.router.add_post("/rtc/offer", rtc_offer)
    app.router.add_delete("/rtc/sessions/{session_id}", rtc_hang_up)
