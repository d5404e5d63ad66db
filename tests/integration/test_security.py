"""API keys, session ownership, the origin allow-list with CORS, and per-client rate limits, on real servers.

Four servers with their own settings: `locked` (API keys, private metrics,
listening on every interface, so cross-origin requests need the allow-list,
which is empty), `listed` (an allow-list, on loopback), `limited` (rate
limits, behind a trusted proxy) and `proxied` (no keys, behind a trusted
proxy, so clients are told apart by address). The session's shared server
shows the development default: on loopback with no allow-list, every origin
may call.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from collections.abc import Iterator, Mapping
from urllib.parse import urlsplit

import aiohttp
import pytest
from multidict import CIMultiDictProxy

from clients.metrics import sample, scrape
from clients.rtc import bare_offer
from loadtest.server_process import free_port
from tests.probes import wait_for_metrics
from tests.server import RunningServer, start_server

KEYS = ("alpha-key", "beta-key")
ALPHA = {"Authorization": "Bearer alpha-key"}
BETA = {"Authorization": "Bearer beta-key"}
APP = "https://app.example"
ELSEWHERE = "https://elsewhere.example"
SPEAK = {"type": "speak", "text": "Let me in.", "id": "s1"}


@pytest.fixture(scope="module")
def locked() -> Iterator[RunningServer]:
    server = start_server({"API_KEYS": ",".join(KEYS), "METRICS_PUBLIC": "false", "HOST": "0.0.0.0"})
    yield server
    server.stop()


@pytest.fixture(scope="module")
def listed() -> Iterator[RunningServer]:
    server = start_server({"ALLOWED_ORIGINS": APP + ", https://other.example/"})
    yield server
    server.stop()


@pytest.fixture(scope="module")
def limited() -> Iterator[RunningServer]:
    server = start_server(
        {
            "RATE_LIMIT_PER_MINUTE": "6",
            "RATE_LIMIT_BURST": "3",
            "API_KEYS": "key-1,key-2,key-3",
            "TRUSTED_PROXIES": "127.0.0.1/32",
        }
    )
    yield server
    server.stop()


@pytest.fixture(scope="module")
def proxied() -> Iterator[RunningServer]:
    server = start_server({"TRUSTED_PROXIES": "127.0.0.1/32"})
    yield server
    server.stop()


async def status_and_error(
    url: str, method: str = "GET", headers: Mapping[str, str] | None = None, body: object = None
) -> tuple[int, str | None, CIMultiDictProxy[str]]:
    """The status, the error code if it is an error, and the headers."""
    async with aiohttp.ClientSession() as http, http.request(method, url, headers=headers, json=body) as resp:
        data = await resp.read()
        code = json.loads(data)["error"]["code"] if resp.status >= 400 and data.startswith(b"{") else None
        return resp.status, code, resp.headers


async def speaks_over_websocket(url: str, headers: Mapping[str, str] | None = None) -> bool:
    async with aiohttp.ClientSession() as http, http.ws_connect(url, headers=headers) as ws:
        await ws.send_json(SPEAK)
        async for message in ws:
            if message.type == aiohttp.WSMsgType.TEXT and json.loads(message.data)["type"] == "done":
                return True
    return False


async def handshake_status(url: str, headers: Mapping[str, str] | None = None) -> int:
    async with aiohttp.ClientSession() as http:
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await http.ws_connect(url, headers=headers)
    return refused.value.status


# API keys


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/v1/voices"), ("POST", "/tts"), ("GET", "/rtc/config"), ("GET", "/openapi.json"), ("GET", "/metrics")],
)
async def test_protected_routes_need_a_valid_key(locked: RunningServer, method: str, path: str) -> None:
    for headers in (None, {"Authorization": "Bearer wrong-key"}, {"Authorization": "Basic YWxwaGEta2V5"}):
        status, code, response_headers = await status_and_error(locked.url + path, method, headers)
        assert (status, code) == (401, "unauthorized")
        assert response_headers["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.asyncio
async def test_every_key_opens_them(locked: RunningServer) -> None:
    for key in KEYS:
        status, _, _ = await status_and_error(locked.url + "/v1/voices", headers={"Authorization": f"bearer {key}"})
        assert status == 200
    assert (await scrape(locked.url, ALPHA)).samples[("media_server_peers", ())] == 0


@pytest.mark.asyncio
@pytest.mark.parametrize("path", ["/", "/static/app.js", "/healthz", "/readyz"])
async def test_open_routes_need_no_key(locked: RunningServer, path: str) -> None:
    status, _, _ = await status_and_error(locked.url + path)
    assert status == 200


@pytest.mark.asyncio
async def test_metrics_are_open_unless_made_private(server_url: str) -> None:
    assert ("media_server_peers", ()) in (await scrape(server_url)).samples


@pytest.mark.asyncio
async def test_webrtc_is_checked_at_the_offer(locked: RunningServer) -> None:
    pc, sdp = await bare_offer()
    offer = {"sdp": sdp, "type": "offer"}
    try:
        status, code, _ = await status_and_error(locked.url + "/rtc/offer", "POST", body=offer)
        assert (status, code) == (401, "unauthorized")
        assert (await scrape(locked.url, ALPHA)).samples[("media_server_peers", ())] == 0
        async with aiohttp.ClientSession(locked.url, headers=ALPHA) as http:
            async with http.post("/rtc/offer", json=offer) as resp:
                assert resp.status == 200
                session_id = (await resp.json())["session_id"]
            async with http.delete(f"/rtc/sessions/{session_id}") as resp:
                assert resp.status == 200
    finally:
        await pc.close()


@pytest.mark.asyncio
async def test_websocket_key_at_the_upgrade_by_header_or_query(locked: RunningServer) -> None:
    ws_url = locked.url + "/ws/tts"
    assert await handshake_status(ws_url) == 401
    assert await handshake_status(ws_url + "?api_key=wrong-key") == 401
    assert await speaks_over_websocket(ws_url + "?api_key=beta-key")
    assert await speaks_over_websocket(ws_url, ALPHA)


@pytest.mark.asyncio
async def test_query_key_only_counts_on_websocket_upgrades(locked: RunningServer) -> None:
    status, code, _ = await status_and_error(locked.url + "/v1/voices?api_key=alpha-key")
    assert (status, code) == (401, "unauthorized")


@pytest.mark.asyncio
async def test_query_key_needs_a_complete_handshake_on_a_websocket_route(locked: RunningServer) -> None:
    handshake = {
        "Upgrade": "websocket",
        "Connection": "Upgrade",
        "Sec-WebSocket-Key": base64.b64encode(os.urandom(16)).decode(),
        "Sec-WebSocket-Version": "13",
    }
    # A complete handshake, but to a route that is no WebSocket: the query key counts for nothing.
    for path in ("/v1/voices", "/rtc/config", "/openapi.json"):
        status, code, _ = await status_and_error(f"{locked.url}{path}?api_key=alpha-key", headers=handshake)
        assert (status, code) == (401, "unauthorized"), path
    # A WebSocket route, but only the Upgrade header: not a handshake either.
    status, code, _ = await status_and_error(locked.url + "/ws/tts?api_key=alpha-key", headers={"Upgrade": "websocket"})
    assert (status, code) == (401, "unauthorized")


def test_a_list_setting_that_names_nothing_refuses_to_start() -> None:
    env = {**os.environ, "HOST": "127.0.0.1", "PORT": str(free_port()), "API_KEYS": " , "}
    started = subprocess.run([sys.executable, "-m", "media_server", "serve"], env=env, capture_output=True, timeout=60)
    assert started.returncode == 2
    assert b"config_error: API_KEYS=' , '" in started.stderr


# Session ownership


async def offer_session(url: str, headers: Mapping[str, str]) -> str:
    pc, sdp = await bare_offer()
    await pc.close()  # the server's peer lives on until it is hung up or times out
    async with aiohttp.ClientSession() as http:
        async with http.post(url + "/rtc/offer", json={"sdp": sdp, "type": "offer"}, headers=headers) as resp:
            assert resp.status == 200, await resp.text()
            session_id: str = (await resp.json())["session_id"]
    return session_id


@pytest.mark.asyncio
async def test_a_session_is_hung_up_only_with_the_key_that_made_it(locked: RunningServer) -> None:
    session_id = await offer_session(locked.url, ALPHA)
    url = f"{locked.url}/rtc/sessions/{session_id}"
    status, code, _ = await status_and_error(url, "DELETE", BETA)
    assert (status, code) == (404, "unknown_session")
    await wait_for_metrics(locked.url, {sample("media_server_peers"): 1.0}, headers=ALPHA)
    assert (await status_and_error(url, "DELETE", ALPHA))[0] == 200
    await wait_for_metrics(locked.url, {sample("media_server_peers"): 0.0}, headers=ALPHA)


@pytest.mark.asyncio
async def test_without_keys_a_session_is_its_client_address(proxied: RunningServer) -> None:
    session_id = await offer_session(proxied.url, {"X-Forwarded-For": "203.0.113.60"})
    url = f"{proxied.url}/rtc/sessions/{session_id}"
    status, code, _ = await status_and_error(url, "DELETE", {"X-Forwarded-For": "203.0.113.61"})
    assert (status, code) == (404, "unknown_session")
    assert (await status_and_error(url, "DELETE", {"X-Forwarded-For": "203.0.113.60"}))[0] == 200


# Origins and CORS


@pytest.mark.asyncio
async def test_off_loopback_cross_origin_needs_the_allow_list(locked: RunningServer) -> None:
    status, code, headers = await status_and_error(locked.url + "/v1/voices", headers={**ALPHA, "Origin": ELSEWHERE})
    assert (status, code) == (403, "forbidden_origin")
    assert "Access-Control-Allow-Origin" not in headers
    assert await handshake_status(locked.url + "/ws/tts", {**ALPHA, "Origin": ELSEWHERE}) == 403


@pytest.mark.asyncio
async def test_same_origin_always_passes(locked: RunningServer) -> None:
    own = {**ALPHA, "Origin": locked.url}
    status, _, headers = await status_and_error(locked.url + "/v1/voices", headers=own)
    assert status == 200 and "Access-Control-Allow-Origin" not in headers
    assert await speaks_over_websocket(locked.url + "/ws/tts", own)


@pytest.mark.asyncio
async def test_a_rebound_host_is_not_the_servers_own_origin(listed: RunningServer) -> None:
    port = urlsplit(listed.url).port
    rebound = {"Host": f"rebound.example:{port}", "Origin": f"http://rebound.example:{port}"}
    status, code, _ = await status_and_error(listed.url + "/v1/voices", headers=rebound)
    assert (status, code) == (403, "forbidden_origin")
    assert await handshake_status(listed.url + "/ws/tts", rebound) == 403
    for own in (f"http://127.0.0.1:{port}", f"http://localhost:{port}"):  # the demo page, as a browser here opens it
        status, _, headers = await status_and_error(listed.url + "/v1/voices", headers={"Origin": own})
        assert status == 200 and "Access-Control-Allow-Origin" not in headers


@pytest.mark.asyncio
async def test_allowed_origin_is_echoed_on_answers_errors_and_streams(listed: RunningServer) -> None:
    origin = {"Origin": APP}
    for method, path, body in (
        ("GET", "/v1/voices", None),
        ("POST", "/tts", {"text": ""}),
        ("POST", "/tts/pcm", {"text": "Streamed across origins."}),
    ):
        status, _, headers = await status_and_error(listed.url + path, method, origin, body)
        assert status in (200, 400)
        assert headers["Access-Control-Allow-Origin"] == APP
        assert "Origin" in headers["Vary"]
        assert "Retry-After" in headers["Access-Control-Expose-Headers"]
    other = {"Origin": "https://OTHER.example"}
    assert (await status_and_error(listed.url + "/v1/voices", headers=other))[0] == 200


@pytest.mark.asyncio
async def test_preflight_is_answered_for_allowed_origins_only(listed: RunningServer) -> None:
    asks = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "authorization, content-type"}
    status, _, headers = await status_and_error(listed.url + "/tts", "OPTIONS", {**asks, "Origin": APP})
    assert status == 204
    assert headers["Access-Control-Allow-Origin"] == APP
    assert "POST" in headers["Access-Control-Allow-Methods"]
    assert {"authorization", "content-type"} <= {
        h.strip().lower() for h in headers["Access-Control-Allow-Headers"].split(",")
    }
    status, code, _ = await status_and_error(listed.url + "/tts", "OPTIONS", {**asks, "Origin": ELSEWHERE})
    assert (status, code) == (403, "forbidden_origin")


@pytest.mark.asyncio
async def test_a_set_allow_list_applies_on_loopback_too(listed: RunningServer) -> None:
    for origin in (ELSEWHERE, "null"):
        status, code, _ = await status_and_error(listed.url + "/healthz", headers={"Origin": origin})
        assert (status, code) == (403, "forbidden_origin")
    assert await handshake_status(listed.url + "/ws/tts", {"Origin": ELSEWHERE}) == 403
    assert await speaks_over_websocket(listed.url + "/ws/tts", {"Origin": APP})


@pytest.mark.asyncio
async def test_on_loopback_with_no_allow_list_every_origin_may_call(server_url: str) -> None:
    status, _, headers = await status_and_error(server_url + "/v1/voices", headers={"Origin": ELSEWHERE})
    assert status == 200 and headers["Access-Control-Allow-Origin"] == ELSEWHERE
    preflight = {"Origin": ELSEWHERE, "Access-Control-Request-Method": "POST"}
    assert (await status_and_error(server_url + "/tts", "OPTIONS", preflight))[0] == 204


# Rate limits (each test takes its own key or forwarded address, so buckets never carry over)


def forwarded(address: str, key: str | None = None) -> dict[str, str]:
    headers = {"X-Forwarded-For": f"198.51.100.99, {address}"}
    return {**headers, "Authorization": f"Bearer {key}"} if key else headers


@pytest.mark.asyncio
async def test_each_key_has_its_own_bucket(limited: RunningServer) -> None:
    url = limited.url + "/v1/voices"
    for _ in range(3):
        assert (await status_and_error(url, headers=forwarded("203.0.113.1", "key-1")))[0] == 200
    status, code, headers = await status_and_error(url, headers=forwarded("203.0.113.2", "key-1"))
    assert (status, code) == (429, "rate_limited")
    assert int(headers["Retry-After"]) >= 1
    assert (await status_and_error(url, headers=forwarded("203.0.113.1", "key-2")))[0] == 200


@pytest.mark.asyncio
async def test_guessing_keys_spends_the_address_budget(limited: RunningServer) -> None:
    url = limited.url + "/v1/voices"
    for _ in range(3):
        assert (await status_and_error(url, headers=forwarded("203.0.113.7", "guess")))[1] == "unauthorized"
    assert (await status_and_error(url, headers=forwarded("203.0.113.7", "guess")))[1] == "rate_limited"
    assert (await status_and_error(url, headers=forwarded("203.0.113.7", "key-3")))[0] == 200
    assert (await status_and_error(url, headers=forwarded("203.0.113.8", "guess")))[1] == "unauthorized"


@pytest.mark.asyncio
async def test_the_client_is_the_address_the_trusted_proxy_saw(limited: RunningServer) -> None:
    url = limited.url + "/v1/voices"
    for spoofed in ("192.0.2.1", "192.0.2.2", "192.0.2.3"):
        headers = {"X-Forwarded-For": f"{spoofed}, 203.0.113.20"}
        assert (await status_and_error(url, headers=headers))[1] == "unauthorized"
    headers = {"X-Forwarded-For": "192.0.2.4, 203.0.113.20"}
    assert (await status_and_error(url, headers=headers))[1] == "rate_limited"


@pytest.mark.asyncio
async def test_open_routes_are_not_rate_limited(limited: RunningServer) -> None:
    for _ in range(5):
        assert (await status_and_error(limited.url + "/healthz", headers=forwarded("203.0.113.30")))[0] == 200


CARTESIA_PCM = {"container": "raw", "encoding": "pcm_s16le", "sample_rate": 16000}


async def cartesia_ends_with(ws: aiohttp.ClientWebSocketResponse) -> str:
    """The type of the message that ended the context: `done` or `error`."""
    async for message in ws:
        kind = json.loads(message.data)["type"] if message.type == aiohttp.WSMsgType.TEXT else ""
        if kind in ("done", "error"):
            return str(kind)
    return "closed"


@pytest.mark.asyncio
async def test_cartesia_clients_key_in_x_api_key_or_the_query(locked: RunningServer) -> None:
    ws_url = locked.url + "/tts/websocket"
    assert await handshake_status(ws_url, {"X-API-Key": "wrong-key"}) == 401
    body = {"context_id": "k", "transcript": "Let me in.", "output_format": CARTESIA_PCM}
    async with aiohttp.ClientSession() as http:
        for headers, url in (({"X-API-Key": "beta-key"}, ws_url), ({}, ws_url + "?api_key=alpha-key")):
            async with http.ws_connect(url, headers=headers) as ws:
                await ws.send_json(body)
                assert await cartesia_ends_with(ws) == "done"
        async with http.post(locked.url + "/tts/bytes", json=body, headers={"X-API-Key": "alpha-key"}) as resp:
            assert resp.status == 200 and len(await resp.read()) > 0
        async with http.post(locked.url + "/tts/bytes", json=body, headers={"X-API-Key": "nope"}) as resp:
            assert resp.status == 401
