"""`GET /ws/calls/{call_id}`: the control channel of a live telephony call, in the data channel's protocol.

A voice agent drives a call whose media protocol carries no text (AudioSocket,
Vonage, Plivo, Telnyx; Twilio's too) over this socket: `speak`, `append`,
`flush` and `cancel` in (a `cancel` is a barge-in: the call's audio stops
within a frame and the platform is told to drop what it buffered), the call's
events out as JSON (`started`, `audio_start`, `done`, `cancelled` with
`played_ms`, `error`). It is authenticated like every route, and the call must
be the caller's: an id that is not live, or a call another client brought, is
404 `unknown_call` at the handshake. A call takes up to `MAX_CONTROLLERS`
channels at once (409 `too_many_controllers`), which all get its events. A bad
message is answered with an `error` on this channel alone; messages count
against this channel's own rate (`MAX_MESSAGES_PER_SECOND`). When the call
hangs up, the channel is closed (1000, "the call ended"); closing the channel
leaves the call alone.

Events leave through a `SocketOutput` that never gets audio: the same bounded,
in-order sending with the same patience as every other socket.
"""

from __future__ import annotations

import asyncio
import contextlib

from aiohttp import WSCloseCode, WSMsgType, web
from aiohttp.typedefs import Handler

from media_server.audio.codecs import PcmEncoder
from media_server.audio.constants import RTC_RATE
from media_server.config import Settings
from media_server.errors import InvalidRequest, MediaServerError
from media_server.ratelimit import MessageRate
from media_server.session.commands import parse_command
from media_server.session.events import ClientEvent, to_json
from media_server.session.session import error_event
from media_server.transports.call import Call
from media_server.transports.call_registry import CallRegistry
from media_server.transports.media_socket import MAX_REASON_BYTES, Owner
from media_server.transports.socket_guard import disconnector, patience, websocket_response
from media_server.transports.socket_output import SocketOutput

PATH = "/ws/calls/{call_id}"
ROUTE = "call_control"
ENDED = b"the call ended"


class ControlChannel:
    """One control socket attached to a call: the call's events out, commands in."""

    def __init__(self, ws: web.WebSocketResponse, call: Call, settings: Settings, output: SocketOutput) -> None:
        self._ws = ws
        self._call = call
        self._output = output
        self._rate = MessageRate(settings.max_messages_per_second)
        self._max_message_bytes = settings.max_message_bytes
        self._close_timeout_s = settings.send_timeout or None

    def handle(self, message: str | bytes) -> None:
        """One message from the agent; a refused one is answered with an `error` here."""
        try:
            if not self._rate.admit():
                return
            if isinstance(message, bytes):
                raise InvalidRequest("message: send JSON text messages, not binary")
            self._call.dispatch(parse_command(message, self._max_message_bytes))
        except MediaServerError as exc:
            self.send_event(error_event(exc))

    def send_event(self, event: ClientEvent) -> None:
        self._output.send_now(to_json(event))

    async def call_ended(self) -> None:
        with contextlib.suppress(TimeoutError, ConnectionError):
            async with asyncio.timeout(self._close_timeout_s):
                await self._ws.close(code=WSCloseCode.OK, message=ENDED)

    async def close(self) -> None:
        await self._output.close()


def call_control_socket(registry: CallRegistry, settings: Settings, owner: Owner) -> Handler:
    """The handler of `GET /ws/calls/{call_id}`."""

    async def ws_call_control(request: web.Request) -> web.StreamResponse:
        call = registry.find(request.match_info["call_id"], owner(request))
        call.check_room()
        ws = websocket_response(settings)
        await ws.prepare(request)
        output = SocketOutput(
            PcmEncoder(RTC_RATE), ws.send_bytes, ws.send_str, patience(settings), disconnector(request, ROUTE)
        )
        channel = ControlChannel(ws, call, settings, output)
        try:
            if call.closed:
                await ws.close(code=WSCloseCode.OK, message=ENDED)
                return ws
            call.attach(channel)
            async for message in ws:
                if message.type in (WSMsgType.TEXT, WSMsgType.BINARY):
                    channel.handle(message.data)
        except MediaServerError as exc:  # the call filled up while this one shook hands
            await ws.close(code=WSCloseCode.TRY_AGAIN_LATER, message=exc.message.encode()[:MAX_REASON_BYTES])
        finally:
            call.detach(channel)
            await channel.close()
        return ws

    return ws_call_control
