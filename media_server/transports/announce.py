"""The Wyoming server announced over mDNS (`WYOMING_ZEROCONF`), so Home Assistant discovers it by itself.

One `_wyoming._tcp.local.` service named after the setting, on the addresses the Wyoming server
listens on: a specific `HOST` is announced on that address's interface only (a loopback `HOST`
never reaches the network); a wildcard `HOST` on every interface, with every IPv4 address the
machine has.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import socket
from collections.abc import AsyncIterator

import ifaddr
from zeroconf import InterfaceChoice, IPVersion
from zeroconf.asyncio import AsyncServiceInfo, AsyncZeroconf

from media_server.config import Settings

log = logging.getLogger(__name__)

SERVICE_TYPE = "_wyoming._tcp.local."


def service_name(name: str) -> str:
    """The mDNS instance name of the service called `name`."""
    return f"{name}.{SERVICE_TYPE}"


async def announced_addresses(settings: Settings) -> list[str]:
    """The IPv4 addresses a Wyoming server bound to `HOST` is reached on."""
    host = settings.host
    if settings.listens_everywhere:
        addresses = [
            str(ip.ip)
            for adapter in ifaddr.get_adapters()
            for ip in adapter.ips
            if ip.is_IPv4 and not ipaddress.ip_address(str(ip.ip)).is_loopback
        ]
        return addresses or ["127.0.0.1"]
    try:
        return [str(ipaddress.IPv4Address(host))]
    except ValueError:
        infos = await asyncio.get_running_loop().getaddrinfo(host, None, family=socket.AF_INET)
        return sorted({str(info[4][0]) for info in infos})


@contextlib.asynccontextmanager
async def announced(name: str, settings: Settings) -> AsyncIterator[None]:
    """Announce the service `name` at `HOST`:`WYOMING_PORT` while the context is open; withdrawn on exit."""
    addresses = await announced_addresses(settings)
    interfaces = InterfaceChoice.All if settings.listens_everywhere else addresses
    zeroconf = AsyncZeroconf(interfaces=interfaces, ip_version=IPVersion.V4Only)
    info = AsyncServiceInfo(
        SERVICE_TYPE,
        service_name(name),
        port=settings.wyoming_port,
        addresses=[socket.inet_aton(address) for address in addresses],
        server=f"{name}.local.",
    )
    try:
        await zeroconf.async_register_service(info)
        log.info("Wyoming server announced over mDNS as %r on %s", name, ", ".join(addresses))
        yield
    finally:
        await zeroconf.async_unregister_all_services()
        await zeroconf.async_close()
