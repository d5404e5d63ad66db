"""Clients that send but never read: every outgoing queue is bounded, and such a client is disconnected.

Two bounds, each on its own server so that one cannot hide the other:
`MAX_UNSENT_BYTES` (events waiting for a client to read them: a WebSocket
client flooding messages that each earn an `error` event, a WebRTC peer
whose SCTP stack acknowledges nothing the server sends) and `SEND_TIMEOUT`
(one send waiting that long for the client to read: a WebSocket client that
asked for speech and stopped reading). The clients are real sockets and a
real aiortc peer; each test ends when `/metrics` shows the session gone.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator

import pytest
from aiortc.rtcsctptransport import Chunk, DataChunk

from clients.metrics import sample
from clients.rtc import SpeechClient
from clients.websocket import raw_websocket, text_frame
from tests.probes import CLEAN, wait_for_metrics
from tests.server import RunningServer, start_server

MAX_UNSENT_BYTES = 16 * 1024
SEND_TIMEOUT_S = 2.0
LONG_TEXT = "This sentence is one of many in a long answer that nobody will read to the end. " * 40
# Each earns an error event of a few hundred bytes: many times the bound in all.
FLOOD = 1000
JUNK_KIND = "x" * 1000
SOCKET_ROUTES = [("/ws/tts", "type", "ws"), ("/ws/telephony", "event", "telephony")]


@pytest.fixture(scope="module")
def bounded() -> Iterator[RunningServer]:
    """Only the byte bound (no send timeout), with a message rate that lets the whole flood in."""
    server = start_server(
        {"MAX_UNSENT_BYTES": str(MAX_UNSENT_BYTES), "SEND_TIMEOUT": "0", "MAX_MESSAGES_PER_SECOND": str(FLOOD * 2)}
    )
    yield server
    server.stop()


@pytest.fixture(scope="module")
def impatient() -> Iterator[RunningServer]:
    """Only the send timeout (no byte bound)."""
    server = start_server({"SEND_TIMEOUT": str(SEND_TIMEOUT_S), "MAX_UNSENT_BYTES": "0"})
    yield server
    server.stop()


def sessions(route: str, live: float) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {sample("media_server_sessions", route=route): live}


@pytest.mark.asyncio
@pytest.mark.parametrize(("path", "key", "route"), SOCKET_ROUTES)
async def test_a_socket_client_flooding_without_reading_is_disconnected(
    bounded: RunningServer, path: str, key: str, route: str
) -> None:
    async with raw_websocket(bounded.url + path, receive_buffer=4096) as ws:
        await wait_for_metrics(bounded.url, sessions(route, 1.0))
        flood = text_frame(json.dumps({key: JUNK_KIND})) * FLOOD
        with contextlib.suppress(ConnectionError):  # the server may hang up before the flood is all sent
            await ws.send(flood)
        await wait_for_metrics(bounded.url, sessions(route, 0.0), timeout_s=30)
    await wait_for_metrics(bounded.url, CLEAN)


@pytest.mark.asyncio
async def test_a_socket_client_that_stops_reading_speech_is_disconnected(impatient: RunningServer) -> None:
    """It asked for speech and reads none: once its socket is full, a send waits `SEND_TIMEOUT` and it is let go.

    The same output, with the same patience, serves telephony; there audio
    leaves in real time, so its socket would take most of a minute to fill.
    """
    async with raw_websocket(impatient.url + "/ws/tts?format=pcm&sample_rate=48000", receive_buffer=4096) as ws:
        await ws.send(text_frame(json.dumps({"type": "speak", "text": LONG_TEXT})))
        await wait_for_metrics(impatient.url, sessions("ws", 1.0))
        await wait_for_metrics(impatient.url, sessions("ws", 0.0), timeout_s=30)
    await wait_for_metrics(impatient.url, CLEAN)


class UnacknowledgingPeer(SpeechClient):
    """A real aiortc peer whose SCTP stack drops, unacknowledged, every DATA chunk the server sends it.

    Its own messages still reach the server, so each one it sends can make the
    server queue an event that never leaves: what a peer that does not read
    looks like from the server's side of the data channel.
    """

    async def stop_acknowledging(self) -> None:
        sctp = self._pc.sctp
        assert sctp is not None
        receive = sctp._receive_chunk

        async def receive_all_but_data(chunk: Chunk) -> None:
            if not isinstance(chunk, DataChunk):
                await receive(chunk)

        sctp._receive_chunk = receive_all_but_data  # type: ignore[method-assign]


@pytest.mark.asyncio
async def test_a_webrtc_peer_that_acknowledges_nothing_is_closed(bounded: RunningServer) -> None:
    peer = UnacknowledgingPeer(bounded.url)
    await peer.connect()
    try:
        await wait_for_metrics(bounded.url, sessions("webrtc", 1.0))
        await peer.stop_acknowledging()
        for _ in range(FLOOD // 5):
            peer.send({"type": JUNK_KIND})
        await wait_for_metrics(bounded.url, {**sessions("webrtc", 0.0), sample("media_server_peers"): 0.0})
    finally:
        await peer.close()
    await wait_for_metrics(bounded.url, CLEAN)
