"""Calls for the telephony tests: a server with an AudioSocket listener, a new call of any protocol with its
control channel (the fake platforms of `clients/telephony.py`), the events of a control channel, and the server's
account of live calls, sessions and tasks."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import aiohttp

from clients.metrics import Exposition, sample, scrape
from clients.telephony import (
    AUDIOSOCKET_SLIN,
    CONTROL,
    PLATFORMS,
    AudioSocketPeer,
    Message,
    Platform,
    WebSocketPeer,
)
from loadtest.server_process import free_port
from tests.server import RunningServer, start_server

LONG_TEXT = (
    "Thanks for calling the support line. Your call matters to us, and a member of the team will be with you "
    "shortly. While you wait, you can find answers to common questions on our website, where the help center "
    "covers billing, orders, deliveries and returns."
)  # about 13.6 s of speech
PROTOCOLS = ("twilio", "telnyx", "plivo", "vonage", "audiosocket")
ROUTES = {"twilio": "telephony", "telnyx": "telnyx", "plivo": "plivo", "vonage": "vonage", "audiosocket": "audiosocket"}
FRAME_BYTES = {"twilio": 160, "telnyx": 160, "plivo": 160, "vonage": 640, "audiosocket": 320}
Peer = WebSocketPeer | AudioSocketPeer


@dataclass(frozen=True)
class CallsServer:
    server: RunningServer
    audiosocket_port: int

    @property
    def url(self) -> str:
        return self.server.url


def start_calls_server(extra_env: dict[str, str] | None = None) -> CallsServer:
    """A server with an AudioSocket listener on a free port (and `extra_env`), ready."""
    port = free_port()
    return CallsServer(start_server({"AUDIOSOCKET_PORT": str(port), **(extra_env or {})}), port)


@asynccontextmanager
async def media(
    http: aiohttp.ClientSession,
    server: CallsServer,
    protocol: str | Platform,
    call_id: str,
    caller_audio: bool = True,
    query: str = "",
    audio_kind: int = AUDIOSOCKET_SLIN,
) -> AsyncIterator[Peer]:
    """The platform's side of a new call: `query` on a media URL, the caller's `audio_kind` on AudioSocket."""
    if protocol == "audiosocket":
        port = server.audiosocket_port
        async with AudioSocketPeer.open(
            "127.0.0.1", port, uuid.UUID(call_id), audio_kind, caller_audio=caller_audio
        ) as peer:
            yield peer
    else:
        platform = protocol if isinstance(protocol, Platform) else PLATFORMS[protocol]
        async with WebSocketPeer.open(
            http, server.url, platform, call_id, query=query, caller_audio=caller_audio
        ) as ws_peer:
            yield ws_peer


@asynccontextmanager
async def call(
    http: aiohttp.ClientSession,
    server: CallsServer,
    protocol: str | Platform,
    query: str = "",
    audio_kind: int = AUDIOSOCKET_SLIN,
) -> AsyncIterator[tuple[Peer, WebSocketPeer]]:
    """A new call of `protocol` and its control channel (opened once the call is live)."""
    call_id = str(uuid.uuid4())
    async with (
        media(http, server, protocol, call_id, query=query, audio_kind=audio_kind) as peer,
        WebSocketPeer.open(http, server.url, CONTROL, call_id, wait_s=10.0) as control,
    ):
        yield peer, control


async def event(control: WebSocketPeer, kind: str, utterance_id: str, timeout_s: float = 60.0) -> Message:
    """The control channel's event `kind` about `utterance_id`, once it has come."""

    def found() -> list[Message]:
        return [message for message in control.received.of("type", kind) if message.get("id") == utterance_id]

    await control.received.wait_for(lambda: bool(found()), timeout_s)
    return found()[0]


async def speak(control: WebSocketPeer, text: str, utterance_id: str) -> None:
    await control.send({"type": "speak", "text": text, "id": utterance_id})


def live(exposition: Exposition, protocol: str) -> float:
    return exposition.samples[sample("media_server_sessions", route=ROUTES[protocol])]


async def settled(http: aiohttp.ClientSession, url: str, tasks_before: float) -> Exposition:
    """The server's metrics once no call, session or extra task is left (TimeoutError if that never comes)."""
    async with asyncio.timeout(20):
        while True:
            exposition = await scrape(url, http=http)
            calls = exposition.samples[sample("media_server_calls")]
            sessions = sum(live(exposition, protocol) for protocol in PROTOCOLS)
            if (
                calls == 0
                and sessions == 0
                and exposition.samples[sample("media_server_event_loop_tasks")] <= tasks_before
            ):
                return exposition
            await asyncio.sleep(0.05)


async def baseline_tasks(http: aiohttp.ClientSession, url: str) -> float:
    return (await scrape(url, http=http)).samples[sample("media_server_event_loop_tasks")]
