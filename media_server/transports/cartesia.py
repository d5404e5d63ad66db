"""`GET /tts/websocket`: Cartesia's streaming TTS WebSocket, so Cartesia clients (Pipecat, LiveKit) work unchanged.

Each `context_id` on a connection is a session of its own (contexts run side by
side, each in order): a generation request's `transcript` is appended to the
context's open utterance, spoken clause by clause as it completes, so text
continued across `continue: true` messages is one utterance; `continue:
false` ends the context (its last audio, then `done`); `flush: true` speaks
what was sent so far and answers `flush_done` once its audio has gone; a
`{context_id, cancel: true}` stops the context's audio at once and drops its
text (nothing more is sent for it). Audio goes as `chunk` messages in the
context's `output_format`; with `add_timestamps`, `timestamps` messages carry
each word as its audio is sent, in seconds from the context's first sample.
Errors are `error` messages with the context's id and the HTTP status of our
error. The message formats are in `media_server.protocols.cartesia`.

Auth: `X-API-Key` (Cartesia's header) or `?api_key=`, checked against
`API_KEYS` by the security middleware at the handshake.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field

from aiohttp import WSMsgType, web
from aiohttp.typedefs import Handler

from media_server.config import Settings
from media_server.engine.seam import Engine
from media_server.errors import Busy, InvalidRequest, MediaServerError, status_for
from media_server.protocols import cartesia
from media_server.ratelimit import MessageRate
from media_server.session.commands import Append, Cancel, Flush, decode_message
from media_server.session.events import Done, Error, SessionEvent, Words
from media_server.session.session import Session, SessionLimits, SessionObserver
from media_server.transports.socket_guard import disconnector, patience, websocket_response
from media_server.transports.socket_output import SocketOutput

log = logging.getLogger(__name__)

PATH = "/tts/websocket"
ROUTE = "cartesia"


@dataclass
class _Context:
    """One context of a connection: its session and output, and where its audio stands."""

    id: str
    session: Session
    output: SocketOutput
    timestamps: bool
    said_s: float = 0.0
    """Seconds of the context's audio in utterances already done (its words' times start there)."""
    has_text: bool = False
    """Text was appended since the last flush."""
    flushes: int = 0


@dataclass
class _Connection:
    engine: Engine
    settings: Settings
    observer: SessionObserver
    ws: web.WebSocketResponse
    request: web.Request
    contexts: dict[str, _Context] = field(default_factory=dict)
    closing: set[asyncio.Task[None]] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.limits = SessionLimits.from_settings(self.settings)
        self.rate = MessageRate(self.settings.max_messages_per_second)

    def handle(self, raw: str) -> None:
        context_id: str | None = None
        try:
            if not self.rate.admit():
                return
            message = decode_message(raw, self.settings.max_message_bytes, "context_id")
            context_id = message.get("context_id") if isinstance(message.get("context_id"), str) else None
            if message.get("cancel") is True:
                self._cancel(context_id)
                return
            self._generate(cartesia.parse_generation(message))
        except MediaServerError as exc:
            self.send(cartesia.error_message(context_id, exc.status, exc.message))

    def send(self, text: str) -> None:
        task = asyncio.create_task(self._send(text), name="cartesia-send")
        self.closing.add(task)
        task.add_done_callback(self.closing.discard)

    async def _send(self, text: str) -> None:
        with contextlib.suppress(ConnectionError):
            await self.ws.send_str(text)

    def _generate(self, generation: cartesia.Generation) -> None:
        context = self.contexts.get(generation.context_id) or self._open(generation)
        session = context.session
        if generation.transcript.strip() or (context.has_text and generation.transcript):
            session.dispatch(
                Append(
                    generation.transcript,
                    generation.voice,
                    dictionaries=generation.dictionaries,
                    speed=generation.speed,
                )
            )
            context.has_text = True
        if generation.flush or not generation.more:
            session.dispatch(Flush())
            context.has_text = False
        if generation.flush:
            context.flushes += 1
            flush_id = context.flushes
            session.after_queued(lambda: self._flushed(context, flush_id))
        if not generation.more:
            session.after_queued(lambda: self._finish(context))

    def _open(self, generation: cartesia.Generation) -> _Context:
        if len(self.contexts) >= self.limits.max_queued_utterances:
            raise Busy(
                f"context_id: this connection already has {len(self.contexts)} contexts open "
                f"(the limit is {self.limits.max_queued_utterances})"
            )
        if generation.voice is not None:
            self.engine.resolve_voice(generation.voice)
        context_id = generation.context_id

        async def send_chunk(audio: bytes) -> None:
            await self.ws.send_str(cartesia.chunk_message(context_id, audio))

        output = SocketOutput(
            generation.encoder(),
            send_chunk,
            self.ws.send_str,
            patience(self.settings),
            disconnector(self.request, ROUTE),
        )
        holder: list[_Context] = []
        session = Session(
            self.engine,
            output,
            lambda event: self._on_event(holder[0], event),
            self.limits,
            ROUTE,
            self.observer,
            generation.voice,
        )
        context = _Context(context_id, session, output, generation.add_timestamps)
        holder.append(context)
        self.contexts[context_id] = context
        return context

    def _on_event(self, context: _Context, event: SessionEvent) -> None:
        if isinstance(event, Words) and context.timestamps:
            words = [
                (w.word, context.said_s + w.start_ms / 1000, context.said_s + w.end_ms / 1000) for w in event.words
            ]
            context.output.send_now(cartesia.timestamps_message(context.id, words))
        elif isinstance(event, Done):
            context.said_s += event.audio_ms / 1000
        elif isinstance(event, Error):
            context.output.send_now(cartesia.error_message(context.id, status_for(event.code), event.message))

    def _flushed(self, context: _Context, flush_id: int) -> None:
        if self.contexts.get(context.id) is context:
            context.output.send_now(cartesia.flush_done_message(context.id, flush_id))

    def _finish(self, context: _Context) -> None:
        """The context's last audio has gone: `done`, then it is closed."""
        if self.contexts.get(context.id) is context:
            context.output.send_now(cartesia.done_message(context.id))
            self._close(context)

    def _cancel(self, context_id: str | None) -> None:
        if context_id is None:
            raise InvalidRequest("context_id: a cancel names the context to cancel")
        context = self.contexts.pop(context_id, None)
        if context is not None:  # out of the table first: the cancel runs its pending `done` and `flush_done`
            context.session.dispatch(Cancel())
            self._close(context)

    def _close(self, context: _Context) -> None:
        self.contexts.pop(context.id, None)
        task = asyncio.create_task(_close_context(context), name=f"cartesia-close-{context.id}")
        self.closing.add(task)
        task.add_done_callback(self.closing.discard)

    async def close(self) -> None:
        for context in list(self.contexts.values()):
            self._close(context)
        await asyncio.gather(*self.closing, return_exceptions=True)


async def _close_context(context: _Context) -> None:
    """Stop the context's session, then its output once everything it queued has been sent (a cancelled
    one's queue is empty)."""
    await context.session.close()
    await context.output.drained()
    await context.output.close()


def cartesia_socket(engine: Engine, settings: Settings, observer: SessionObserver) -> Handler:
    """The handler of `GET /tts/websocket`."""

    async def tts_websocket(request: web.Request) -> web.StreamResponse:
        ws = websocket_response(settings)
        await ws.prepare(request)
        connection = _Connection(engine, settings, observer, ws, request)
        try:
            async for message in ws:
                if message.type == WSMsgType.TEXT:
                    connection.handle(message.data)
                elif message.type == WSMsgType.BINARY:
                    connection.send(cartesia.error_message(None, 400, "message: send JSON text messages"))
        finally:
            await connection.close()
        return ws

    return tts_websocket
