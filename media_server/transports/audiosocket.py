"""An Asterisk AudioSocket listener on `AUDIOSOCKET_PORT`: each TCP connection is one call.

The protocol (Asterisk's "AudioSocket" channel documentation): messages of a
1-byte kind, a 2-byte big-endian payload length and the payload. Asterisk
sends the call's UUID first (kind 0x01, 16 bytes), then the caller's audio
every 20 ms as signed 16-bit little-endian PCM, kind 0x10 at 8 kHz (the
`AudioSocket()` dialplan application) or 0x11-0x18 at 12, 16, 24, 32, 44.1,
48, 96 or 192 kHz (the channel driver with a higher-rate slin codec); DTMF
digits (0x03), a hang-up (0x00, or just closing the socket) and errors (0xff,
an optional code).

The call is named by its UUID in canonical lower-case form and starts with the
message after it: speech goes back in 20 ms frames paced in real time, at the
rate of the first audio kind the peer sent (48 kHz for the two higher ones; 8
kHz when that message is not audio), where Asterisk passes it to the channel.
The caller's audio is taken and discarded. There is no text on this
connection: the call is driven by its control channel (`/ws/calls/{uuid}`).
A hang-up from either side ends the call. The server hangs up (sends 0x00 and
closes) on what it cannot go on after: a first message that is not a UUID, an
unknown kind, a payload that does not fit its kind, an error from the peer, or
no message for `IDLE_TIMEOUT_S` (Asterisk sends audio every 20 ms).

The protocol has no authentication: the listener binds `HOST`, and the port
belongs on a network only Asterisk reaches. Without `API_KEYS` a call belongs
to the address of the Asterisk that connected (as every session belongs to
its client's address); with keys, to any valid key (see the README).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import struct
import uuid
from collections.abc import Callable

from media_server.errors import InvalidRequest
from media_server.session.events import ClientEvent
from media_server.transports.call import LINEAR16, Call, CallAudio, CallOrigin, CallServices
from media_server.transports.tcp_server import tcp_server

log = logging.getLogger(__name__)

ROUTE = "audiosocket"
LEAD_S = 0.02  # Asterisk writes what it gets to the channel at once: one frame ahead at most
IDLE_TIMEOUT_S = 60.0
HEADER = struct.Struct(">BH")
HANGUP = 0x00
UUID = 0x01
DTMF = 0x03
ERROR = 0xFF
AUDIO_RATES = {
    0x10: 8000,
    0x11: 12000,
    0x12: 16000,
    0x13: 24000,
    0x14: 32000,
    0x15: 44100,
    0x16: 48000,
    0x17: 96000,
    0x18: 192000,
}
MAX_OUT_RATE = 48000
OUT_KINDS = {rate: kind for kind, rate in AUDIO_RATES.items() if rate <= MAX_OUT_RATE}

OwnerOfAddress = Callable[[str], str | None]


class ProtocolError(Exception):
    """The peer sent something the protocol cannot go on after."""


def message(kind: int, payload: bytes = b"") -> bytes:
    return HEADER.pack(kind, len(payload)) + payload


class AudioSocketWire:
    """A call's audio as AudioSocket messages of the call's audio kind; the protocol has no text."""

    lead_s = LEAD_S

    def __init__(self, writer: asyncio.StreamWriter, kind: int) -> None:
        self._writer = writer
        self._kind = kind

    async def send_audio(self, frame: bytes) -> None:
        self._writer.write(message(self._kind, frame))
        await self._writer.drain()

    async def send_text(self, text: str) -> None:
        raise RuntimeError("AudioSocket carries no text messages")

    def event_message(self, event: ClientEvent) -> None:
        return None

    def mark_message(self, name: str) -> None:
        return None

    def clear_message(self) -> None:
        return None


class AudioSocketConnection:
    """One AudioSocket connection and its call."""

    def __init__(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, services: CallServices, owner: str | None
    ) -> None:
        self._reader = reader
        self._writer = writer
        self._services = services
        self._owner = owner
        self.call: Call | None = None

    async def run(self) -> None:
        """Serve the call until either side hangs up."""
        try:
            call_id = await self._read_uuid()
            while await self._serve(call_id):
                pass
        except ProtocolError as exc:
            log.warning("hanging up an AudioSocket call: %s", exc)
            self._writer.write(message(HANGUP))
        except (asyncio.IncompleteReadError, ConnectionError):
            pass  # the peer closed the socket: its hang-up
        except TimeoutError:
            log.warning("hanging up an AudioSocket call silent for %.0f s", IDLE_TIMEOUT_S)
            self._writer.write(message(HANGUP))
        finally:
            if self.call is not None:
                await self.call.close()

    async def _read(self) -> tuple[int, bytes]:
        async with asyncio.timeout(IDLE_TIMEOUT_S):
            kind, length = HEADER.unpack(await self._reader.readexactly(HEADER.size))
            return kind, await self._reader.readexactly(length)

    async def _read_uuid(self) -> str:
        kind, payload = await self._read()
        if kind != UUID or len(payload) != 16:
            raise ProtocolError(f"expected the call's UUID first (kind 0x01, 16 bytes), got kind {kind:#04x}")
        return str(uuid.UUID(bytes=payload))

    async def _serve(self, call_id: str) -> bool:
        """Read and handle one message; False once the peer hung up."""
        kind, payload = await self._read()
        if kind == HANGUP:
            return False
        if kind == ERROR:
            raise ProtocolError(f"the peer reported an error (code {payload.hex() or 'none'})")
        if kind not in AUDIO_RATES and kind != DTMF:
            raise ProtocolError(f"unknown message kind {kind:#04x}")
        if kind in AUDIO_RATES and (not payload or len(payload) % 2):
            raise ProtocolError(f"audio of {len(payload)} bytes is not whole 16-bit samples")
        if kind == DTMF and len(payload) != 1:
            raise ProtocolError(f"a DTMF message carries one digit, not {len(payload)} bytes")
        if self.call is None:
            self._start(call_id, min(AUDIO_RATES.get(kind, 8000), MAX_OUT_RATE))
        else:
            self.call.admit()  # counted; the caller's audio itself is discarded
        return True

    def _start(self, call_id: str, rate: int) -> None:
        origin = CallOrigin(self._services, ROUTE, self._owner, None, self._drop)
        self.call = origin.start(AudioSocketWire(self._writer, OUT_KINDS[rate]), CallAudio(LINEAR16, rate))
        try:
            self.call.register(call_id)
        except InvalidRequest as exc:
            raise ProtocolError(exc.message) from None

    def _drop(self, why: str) -> None:
        log.warning("disconnecting an AudioSocket peer that does not read: %s", why)
        self._writer.transport.abort()


def audiosocket_server(
    services: CallServices, host: str, port: int, owner_of_address: OwnerOfAddress
) -> contextlib.AbstractAsyncContextManager[None]:
    """Take AudioSocket calls on `host`:`port` while the context is open; every call is hung up with it."""

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        address = str(peer[0]) if isinstance(peer, tuple) else ""
        await AudioSocketConnection(reader, writer, services, owner_of_address(address)).run()

    return tcp_server(serve, host, port, "AudioSocket listener")
