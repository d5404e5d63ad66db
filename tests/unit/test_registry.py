"""The peer registry on its own, with real aiortc peers: what its logs say about a peer."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import pytest

from clients.rtc import bare_offer
from signaling.registry import Peer, PeerRegistry, RegistryLimits


class NoMedia:
    """A peer's media side that does nothing: the registry only opens and closes it."""

    async def wait_idle(self) -> None:
        return None

    async def close(self) -> None:
        return None


async def attach_nothing(peer: Peer, options: Mapping[str, Any]) -> NoMedia:
    return NoMedia()


@pytest.mark.asyncio
async def test_logs_name_a_peer_by_its_tag_never_by_its_session_id(caplog: pytest.LogCaptureFixture) -> None:
    registry = PeerRegistry(attach_nothing, ice_servers=[], limits=RegistryLimits())
    pc, sdp = await bare_offer()
    try:
        with caplog.at_level(logging.INFO, logger="signaling"):
            session_id = (await registry.answer({"sdp": sdp, "type": "offer"}, owner="alice"))["session_id"]
            await registry.hang_up(session_id, "alice")
    finally:
        await pc.close()
        await registry.stop()
    lines = [record.getMessage() for record in caplog.records if record.name.startswith("signaling")]
    assert any("created" in line for line in lines) and any("closed" in line for line in lines)
    assert not [line for line in lines if session_id in line]
