"""Fetching a user-supplied reference-audio URL without opening a door into the network (no SSRF).

Refused unless `ALLOW_REMOTE_AUDIO_URLS=true`; then only `https` URLs, with no
user or password in them, whose host is exactly one of `REMOTE_AUDIO_HOSTS`
(no wildcards, no subdomains). Every address that host resolves to is checked
when the connection is made (by the connector's resolver, so a second DNS
answer cannot slip in between check and use): loopback, private, link-local,
multicast, reserved and unspecified addresses are refused.
`REMOTE_AUDIO_ALLOW_PRIVATE=true` lets private and loopback addresses through
(an audio store on the same machine or LAN, and the tests); link-local ones
(cloud metadata at 169.254.169.254) never. Redirects are followed, at most
`MAX_REDIRECTS`, only to `https` on the same host. The body is capped at
`REMOTE_AUDIO_MAX_BYTES` and the whole fetch at `REMOTE_AUDIO_TIMEOUT` seconds.
No proxy from the environment is used: it would connect on our behalf to
addresses this module never saw.
"""

from __future__ import annotations

import ipaddress
import socket
import ssl

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver
from yarl import URL

from media_server.config import Settings
from media_server.errors import RemoteFetchFailed, UrlRefused

MAX_REDIRECTS = 3
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
READ_CHUNK_BYTES = 64 * 1024

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def _address_refusal(ip: IpAddress, allow_private: bool) -> str | None:
    """Why the server will not connect to `ip`, or None."""
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if ip.is_link_local:
        return "a link-local address"
    if ip.is_multicast or ip.is_unspecified or ip.is_reserved:
        return "not a unicast address"
    if ip.is_global or (allow_private and (ip.is_private or ip.is_loopback)):
        return None
    return "a loopback address" if ip.is_loopback else "a private address"


class _CheckedResolver(AbstractResolver):
    """The default resolver, refusing hosts with any address `_address_refusal` refuses."""

    def __init__(self, allow_private: bool) -> None:
        self._inner = DefaultResolver()
        self._allow_private = allow_private

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        results = await self._inner.resolve(host, port, family)
        for result in results:
            reason = _address_refusal(ipaddress.ip_address(result["host"]), self._allow_private)
            if reason is not None:
                raise UrlRefused(f"url: {host} resolves to {result['host']}, {reason}")
        return results

    async def close(self) -> None:
        await self._inner.close()


def _checked_url(url: URL, settings: Settings) -> URL:
    """`url` if policy allows fetching it (before any address is known); raises UrlRefused."""
    if url.scheme != "https":
        raise UrlRefused(f"url: only https URLs are fetched, not {url.scheme or 'a relative URL'!r}")
    if url.user is not None or url.password is not None:
        raise UrlRefused("url: URLs with a user or password are not fetched")
    host = _canonical_host(url.host or "")
    if host not in {_canonical_host(entry) for entry in settings.remote_audio_hosts}:
        raise UrlRefused(f"url: host {host!r} is not one of REMOTE_AUDIO_HOSTS")
    try:
        literal = ipaddress.ip_address(host)
    except ValueError:
        return url
    reason = _address_refusal(literal, settings.remote_audio_allow_private)
    if reason is not None:
        raise UrlRefused(f"url: {host} is {reason}")
    return url


def _canonical_host(host: str) -> str:
    """Lower case without a trailing dot; an IP address in its canonical form."""
    host = host.strip().rstrip(".").lower()
    try:
        return str(ipaddress.ip_address(host.strip("[]")))
    except ValueError:
        return host


def _redirect(current: URL, location: str | None, settings: Settings) -> URL:
    if not location:
        raise RemoteFetchFailed(f"url: {current.host} redirected without a Location")
    target = _checked_url(current.join(URL(location)), settings)
    if target.host != current.host:
        raise UrlRefused(f"url: {current.host} redirected to another host, {target.host}")
    return target


async def _read_capped(response: aiohttp.ClientResponse, max_bytes: int) -> bytes:
    too_large = UrlRefused(f"url: the audio is over the limit of {max_bytes} bytes")
    if (response.content_length or 0) > max_bytes:
        raise too_large
    parts: list[bytes] = []
    size = 0
    async for part in response.content.iter_chunked(READ_CHUNK_BYTES):
        size += len(part)
        if size > max_bytes:
            raise too_large
        parts.append(part)
    return b"".join(parts)


async def fetch_reference(url: str, settings: Settings) -> bytes:
    """The bytes at `url`, if policy allows fetching it; raises UrlRefused or RemoteFetchFailed."""
    if not settings.allow_remote_audio_urls:
        raise UrlRefused("url: this server does not fetch URLs (ALLOW_REMOTE_AUDIO_URLS=false); send the audio itself")
    try:
        target = _checked_url(URL(url), settings)
    except ValueError as exc:
        raise UrlRefused(f"url: not a valid URL ({exc})") from exc
    connector = aiohttp.TCPConnector(
        resolver=_CheckedResolver(settings.remote_audio_allow_private),
        use_dns_cache=False,
        ssl=ssl.create_default_context(),
    )
    timeout = aiohttp.ClientTimeout(total=settings.remote_audio_timeout)
    host = target.host
    try:
        async with aiohttp.ClientSession(connector=connector, timeout=timeout, trust_env=False) as http:
            for _ in range(MAX_REDIRECTS + 1):
                async with http.get(target, allow_redirects=False) as response:
                    if response.status in REDIRECT_STATUSES:
                        target = _redirect(target, response.headers.get("Location"), settings)
                        continue
                    if response.status != 200:
                        raise RemoteFetchFailed(f"url: {host} answered {response.status} {response.reason}")
                    return await _read_capped(response, settings.remote_audio_max_bytes)
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise RemoteFetchFailed(f"url: fetching from {host} failed: {exc or type(exc).__name__}") from exc
    raise UrlRefused(f"url: {host} redirected more than {MAX_REDIRECTS} times")
