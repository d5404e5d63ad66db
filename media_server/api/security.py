"""Who may talk to the server: API keys, per-client rate limits, the browser origin allow-list, CORS.

`install(app, settings)` adds one middleware and one response hook. In order,
for every request:

1. The client address: the peer's, or, when the peer is one of
   `TRUSTED_PROXIES`, the last address in `X-Forwarded-For` that is not a
   trusted proxy. Downstream, `request.remote` is that address (signaling
   counts peers per address with it).
2. The origin, for requests that carry `Origin` (browsers): requests from the
   server's own pages (`PUBLIC_ORIGINS`; by default its loopback addresses
   and `HOST` on `PORT`) always pass. The `Host` header plays no part: a
   DNS-rebinding page names whatever host it likes there. Other origins pass
   when they are in `ALLOWED_ORIGINS` (`*` lets in any), or when that list is
   empty and the server listens on a loopback host (a development machine:
   everything open). Otherwise 403 `forbidden_origin`, for WebSocket upgrades
   too. A CORS preflight (`OPTIONS` with `Access-Control-Request-Method`)
   from an allowed origin is answered here, before keys: browsers never send
   credentials on a preflight.
3. Open routes (`/`, `/static/*`, `/healthz`, `/readyz`, and `/metrics`
   unless `METRICS_PUBLIC=false`) need nothing more.
4. The rate limit (`RATE_LIMIT_PER_MINUTE`, bursts of `RATE_LIMIT_BURST`):
   one bucket per valid API key, else one per address, so guessing keys
   spends the guesser's address budget. Over it: 429 `rate_limited` with
   `Retry-After`.
5. With `API_KEYS` set: `Authorization: Bearer <key>` or `X-API-Key: <key>`
   (as Cartesia's clients send it), or `?api_key=<key>` on
   a real WebSocket handshake of a route added with `add_websocket_route`
   (browsers cannot set headers there). Else 401 `unauthorized`. WebRTC is
   checked at `/rtc/offer`.

Past these checks `request[PRINCIPAL]` names who is calling: the API key
(by its position in `API_KEYS`), or without keys the client address. A
WebRTC session belongs to the principal that created it.

Allowed cross-origin responses, errors and streams included, carry
`Access-Control-Allow-Origin` (the origin echoed) through the response hook.
"""

from __future__ import annotations

import hmac
import ipaddress
from collections.abc import Iterable, Iterator

from aiohttp import hdrs, web
from aiohttp.typedefs import Handler
from yarl import URL

from media_server.config import Settings
from media_server.errors import ConfigError, Forbidden, RateLimited, Unauthorized
from media_server.ratelimit import ClientBuckets

OPEN_PATHS = frozenset({"/", "/healthz", "/readyz"})
STATIC_PREFIX = "/static/"
METRICS_PATH = "/metrics"
API_KEY_QUERY = "api_key"
CORS_METHODS = "GET, POST, DELETE, OPTIONS"
CORS_REQUEST_HEADERS = "Authorization, Content-Type, X-Request-ID, X-API-Key, Cartesia-Version"
API_KEY_HEADER = "X-API-Key"
"""Cartesia's key header: its clients send nothing else."""
CORS_EXPOSED_HEADERS = "Retry-After, X-Sample-Rate, X-Request-ID"
PREFLIGHT_MAX_AGE_S = 600
WWW_AUTHENTICATE = 'Bearer realm="media-server"'
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")

CROSS_ORIGIN = web.RequestKey("cross_origin", str)
PRINCIPAL = web.RequestKey("principal", str)
WEBSOCKET_ROUTES = web.AppKey("websocket_routes", frozenset[web.AbstractResource])

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Origin = tuple[str, str, int | None]


def _normalized_origin(origin: str) -> str:
    return origin.strip().rstrip("/").lower()


def _origin(origin: str) -> Origin | None:
    """(scheme, host, port) of an http(s) origin such as `https://app.example`; None for anything else."""
    try:
        url = URL(origin.strip())
    except (ValueError, TypeError):
        return None
    if url.scheme not in ("http", "https") or not url.host or url.path not in ("", "/") or url.query_string:
        return None
    return url.scheme, url.host.lower(), url.port


def _default_public_origins(settings: Settings) -> Iterator[str]:
    """The server as a browser on this machine reaches it: its loopback names, and `HOST` when it names one."""
    hosts = [*LOOPBACK_HOSTS] + ([] if settings.listens_everywhere else [settings.host])
    for host in hosts:
        yield f"http://[{host}]:{settings.port}" if ":" in host else f"http://{host}:{settings.port}"


def public_origins(settings: Settings) -> frozenset[Origin]:
    """The origins of the server's own pages: `PUBLIC_ORIGINS`, or by default its loopback ones."""
    found = set()
    for entry in settings.public_origins or tuple(_default_public_origins(settings)):
        origin = _origin(entry)
        if origin is None:
            raise ConfigError(f"PUBLIC_ORIGINS: {entry!r} is not an origin such as https://tts.example")
        found.add(origin)
    return frozenset(found)


def principal(request: web.Request) -> str | None:
    """Who `request` speaks for: `key:<position in API_KEYS>` or `address:<client>`; None on open routes."""
    return request.get(PRINCIPAL)


def address_principal(address: str | None) -> str:
    """The principal of a client known only by its address (no valid API key)."""
    return f"address:{address}"


def add_websocket_route(app: web.Application, path: str, handler: Handler) -> None:
    """Add the WebSocket route `GET path`: its handshake may carry the API key as `?api_key=`."""
    resource = app.router.add_get(path, handler).resource
    assert resource is not None
    app[WEBSOCKET_ROUTES] = app.get(WEBSOCKET_ROUTES, frozenset()) | {resource}


def _is_websocket_handshake(request: web.Request) -> bool:
    """A complete WebSocket handshake (GET, Upgrade, Connection, key and version) on a WebSocket route."""
    resource = request.match_info.route.resource
    if request.method != hdrs.METH_GET or resource not in request.app.get(WEBSOCKET_ROUTES, frozenset()):
        return False
    return web.WebSocketResponse().can_prepare(request).ok


def _networks(entries: Iterable[str]) -> tuple[Network, ...]:
    try:
        return tuple(ipaddress.ip_network(entry, strict=False) for entry in entries)
    except ValueError as exc:
        raise ConfigError(f"TRUSTED_PROXIES: {exc}") from exc


class Security:
    """The checks `install` puts in front of every route, built once from the settings."""

    def __init__(self, settings: Settings) -> None:
        self._keys = tuple(key.encode() for key in settings.api_keys)
        origins = {_normalized_origin(origin) for origin in settings.allowed_origins}
        self._origins = frozenset(origins - {"*"})
        self._any_origin = "*" in origins or (not origins and settings.listens_on_loopback)
        self._public = public_origins(settings)
        self._proxies = _networks(settings.trusted_proxies)
        self._metrics_public = settings.metrics_public
        self._buckets = (
            ClientBuckets(settings.rate_limit_per_minute, settings.rate_limit_burst)
            if settings.rate_limit_per_minute > 0
            else None
        )

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        origin = request.headers.get(hdrs.ORIGIN)
        if origin is not None:
            self._check_origin(request, origin)
        client = self._client_address(request)
        if client is not None and client != request.remote:
            request = request.clone(remote=client)
        if origin is not None and request.method == hdrs.METH_OPTIONS:
            if hdrs.ACCESS_CONTROL_REQUEST_METHOD in request.headers:
                return self._preflight(origin)
        if not self._is_open(request.path):
            key = self._valid_key(request)
            principal = f"key:{key}" if key is not None else address_principal(request.remote)
            self._rate_limit(principal)
            if self._keys and key is None:
                raise Unauthorized(
                    "authorization: send an API key as 'Authorization: Bearer <key>' "
                    "(on a WebSocket upgrade, '?api_key=<key>' also works)"
                )
            request[PRINCIPAL] = principal
        return await handler(request)

    async def on_response_prepare(self, request: web.Request, response: web.StreamResponse) -> None:
        origin = request.get(CROSS_ORIGIN)
        if origin is not None:
            response.headers[hdrs.ACCESS_CONTROL_ALLOW_ORIGIN] = origin
            response.headers[hdrs.ACCESS_CONTROL_EXPOSE_HEADERS] = CORS_EXPOSED_HEADERS
        vary = response.headers.get(hdrs.VARY)
        if hdrs.ORIGIN in request.headers and (vary is None or "origin" not in vary.lower()):
            response.headers[hdrs.VARY] = f"{vary}, {hdrs.ORIGIN}" if vary else hdrs.ORIGIN
        if response.status == 401:
            response.headers.setdefault(hdrs.WWW_AUTHENTICATE, WWW_AUTHENTICATE)

    def _check_origin(self, request: web.Request, origin: str) -> None:
        if _origin(origin) in self._public:
            return
        if not self._any_origin and _normalized_origin(origin) not in self._origins:
            raise Forbidden(f"origin: {origin!r} may not call this server; add it to ALLOWED_ORIGINS to let it in")
        request[CROSS_ORIGIN] = origin

    def _client_address(self, request: web.Request) -> str | None:
        """The client's address: the peer's, or the one a trusted proxy forwarded for."""
        address = request.remote
        if not self._proxies or not self._trusted(address):
            return address
        for hop in reversed(",".join(request.headers.getall(hdrs.X_FORWARDED_FOR, [])).split(",")):
            hop = hop.strip()
            if not hop:
                continue
            address = hop
            if not self._trusted(hop):
                break
        return address

    def _trusted(self, address: str | None) -> bool:
        try:
            ip = ipaddress.ip_address(address or "")
        except ValueError:
            return False
        return any(ip in network for network in self._proxies)

    @staticmethod
    def _preflight(origin: str) -> web.Response:
        return web.Response(
            status=204,
            headers={
                hdrs.ACCESS_CONTROL_ALLOW_ORIGIN: origin,
                hdrs.ACCESS_CONTROL_ALLOW_METHODS: CORS_METHODS,
                hdrs.ACCESS_CONTROL_ALLOW_HEADERS: CORS_REQUEST_HEADERS,
                hdrs.ACCESS_CONTROL_MAX_AGE: str(PREFLIGHT_MAX_AGE_S),
            },
        )

    def _is_open(self, path: str) -> bool:
        return path in OPEN_PATHS or path.startswith(STATIC_PREFIX) or (path == METRICS_PATH and self._metrics_public)

    def _valid_key(self, request: web.Request) -> int | None:
        """The index of the API key the request presents, if it is one of ours."""
        presented = self._presented_key(request)
        if presented is None:
            return None
        found = None
        for index, key in enumerate(self._keys):
            if hmac.compare_digest(presented, key):
                found = index
        return found

    @staticmethod
    def _presented_key(request: web.Request) -> bytes | None:
        scheme, _, credentials = request.headers.get(hdrs.AUTHORIZATION, "").partition(" ")
        if scheme.lower() == "bearer" and credentials.strip():
            return credentials.strip().encode("utf-8", "surrogatepass")
        header_key = request.headers.get(API_KEY_HEADER, "").strip()
        if header_key:
            return header_key.encode("utf-8", "surrogatepass")
        query_key = request.query.get(API_KEY_QUERY)
        if query_key and _is_websocket_handshake(request):
            return query_key.encode("utf-8", "surrogatepass")
        return None

    def _rate_limit(self, client: str) -> None:
        if self._buckets is None:
            return
        wait_s = self._buckets.take(client)
        if wait_s:
            raise RateLimited(
                f"rate limit: over {self._buckets.per_minute} requests a minute; retry in {wait_s:.1f} s",
                retry_after_s=wait_s,
            )


def install(app: web.Application, settings: Settings) -> None:
    """Put the security checks in front of every route of `app`."""
    security = Security(settings)
    app.middlewares.append(security.middleware)
    app.on_response_prepare.append(security.on_response_prepare)
