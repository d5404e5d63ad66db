"""The Wyoming server's mDNS announcement: the name it may take, and the addresses it announces."""

from __future__ import annotations

import pytest

from media_server.config import Settings
from media_server.errors import ConfigError
from media_server.transports.announce import announced_addresses


@pytest.mark.parametrize("name", ["-lead", "trail-", "has space", "dot.ted", "x" * 64])
def test_a_name_that_is_not_a_dns_label_is_refused(name: str) -> None:
    with pytest.raises(ConfigError, match="WYOMING_ZEROCONF=.*a DNS label"):
        Settings.from_env({"WYOMING_PORT": "10200", "WYOMING_ZEROCONF": name})


def test_an_announcement_needs_the_wyoming_server() -> None:
    with pytest.raises(ConfigError, match="WYOMING_PORT must be set"):
        Settings.from_env({"WYOMING_ZEROCONF": "kitchen"})
    assert Settings.from_env({"WYOMING_PORT": "10200", "WYOMING_ZEROCONF": "kitchen-1"}).wyoming_zeroconf == "kitchen-1"


@pytest.mark.asyncio
async def test_a_specific_host_is_announced_alone_and_a_wildcard_never_as_loopback() -> None:
    assert await announced_addresses(Settings(host="127.0.0.1")) == ["127.0.0.1"]
    assert await announced_addresses(Settings(host="localhost")) == ["127.0.0.1"]
    everywhere = await announced_addresses(Settings(host="0.0.0.0"))
    loopback = [address for address in everywhere if address.startswith("127.")]
    assert everywhere and (not loopback or everywhere == ["127.0.0.1"])  # loopback only on a machine with no network
