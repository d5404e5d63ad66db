"""A Wyoming TCP server (`WYOMING_PORT`), so Home Assistant's Wyoming integration uses this server as its TTS.

Per connection, one request at a time:
- `describe` -> `info`: one TTS program listing our voices and their
  languages, with `supports_synthesize_streaming`;
- `synthesize` {text, voice?: {name, language}} -> `audio-start` {rate,
  width, channels}, `audio-chunk`s (s16le mono at the voice's rate), `audio-stop`;
- streaming: `synthesize-start` {voice?}, `synthesize-chunk` {text}...,
  `synthesize-stop` -> the same audio events, the text spoken clause by
  clause as it arrives (one utterance), then `synthesize-stopped`. A
  `synthesize` sent while a stream is open repeats its text for older
  servers, as Home Assistant does, and is ignored.
- `text_format: "ssml"` on `synthesize` or `synthesize-start`: the text is
  SSML (`media_server.text.ssml`). A streamed document is spoken whole at
  `synthesize-stop` (SSML cannot be spoken clause by clause), its chunks
  held until then, up to the text limit.
A refused or failed request is an `error` event {text, code}. Each request
is a session of its own (real-time priority), as on every transport.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from media_server.audio.codecs import PcmEncoder
from media_server.config import Settings
from media_server.engine.seam import Engine
from media_server.errors import InvalidRequest, MediaServerError, TextTooLong
from media_server.protocols.wyoming import WyomingEvent, encode_event, read_event
from media_server.session.commands import Append, Flush, Speak, new_utterance_id
from media_server.session.events import AudioStart, Done, Error, SessionEvent
from media_server.session.session import Session, SessionLimits, SessionObserver
from media_server.transports.socket_guard import patience
from media_server.transports.socket_output import SocketOutput
from media_server.transports.tcp_server import tcp_server

log = logging.getLogger(__name__)

ROUTE = "wyoming"
WIDTH = 2
CHANNELS = 1
ATTRIBUTION = {"name": "media-server", "url": "https://github.com/"}


@dataclass
class _Request:
    """One synthesis on a connection: its session and output, and whether it is over."""

    session: Session
    output: SocketOutput
    ended: asyncio.Event
    voice: str | None = None
    document: list[str] | None = None
    """A streamed SSML document's chunks so far (None: plain text, spoken as it arrives)."""


class WyomingConnection:
    """Answers one client's events, one request at a time."""

    def __init__(
        self,
        engine: Engine,
        settings: Settings,
        observer: SessionObserver,
        writer: asyncio.StreamWriter,
    ) -> None:
        self._engine = engine
        self._settings = settings
        self._observer = observer
        self._writer = writer
        self._limits = SessionLimits.from_settings(settings)
        self._stream: _Request | None = None
        self._gone = asyncio.Event()
        """The client went away or stopped reading: a request in progress is not waited for."""

    async def serve(self, reader: asyncio.StreamReader) -> None:
        try:
            while (event := await read_event(reader, self._settings.max_message_bytes)) is not None:
                try:
                    await self._handle(event)
                except MediaServerError as exc:
                    await self._send(_error(exc.code, exc.message))
        except (InvalidRequest, asyncio.IncompleteReadError) as exc:
            log.info("closing a Wyoming connection: %s", exc)
        finally:
            if self._stream is not None:
                await _close(self._stream)

    async def _handle(self, event: WyomingEvent) -> None:
        match event.type:
            case "describe":
                await self._send(WyomingEvent("info", self._info()))
            case "synthesize" if self._stream is None:
                voice, text = _voice(event.data), _text(event.data)
                request = self._open(voice)
                try:
                    request.session.dispatch(Speak(text, new_utterance_id(), voice, 1.0, ssml=_ssml(event.data)))
                finally:
                    await self._finish(request)
            case "synthesize":
                pass  # the whole text again, sent for older servers during a stream
            case "synthesize-start":
                if self._stream is not None:
                    raise InvalidRequest("synthesize-start: a stream is already open; stop it first")
                voice = _voice(event.data)
                self._stream = self._open(voice)
                self._stream.voice = voice
                self._stream.document = [] if _ssml(event.data) else None
            case "synthesize-chunk":
                self._chunk(self._streaming("synthesize-chunk"), _text(event.data))
            case "synthesize-stop":
                request = self._streaming("synthesize-stop")
                self._stream = None
                if request.document is None:
                    request.session.dispatch(Flush())
                else:
                    document = "".join(request.document)
                    request.session.dispatch(Speak(document, new_utterance_id(), request.voice, 1.0, ssml=True))
                await self._finish(request)
                await self._send(WyomingEvent("synthesize-stopped"))
            case _:
                log.debug("ignoring a Wyoming %r event", event.type)

    def _chunk(self, request: _Request, text: str) -> None:
        if request.document is None:
            request.session.dispatch(Append(text, None))
            return
        held = sum(map(len, request.document)) + len(text)
        if held > self._limits.max_text_chars:
            raise TextTooLong(
                f"text: the SSML streamed so far is {held} characters, over the limit of {self._limits.max_text_chars}"
            )
        request.document.append(text)

    def _streaming(self, kind: str) -> _Request:
        if self._stream is None:
            raise InvalidRequest(f"{kind}: no stream is open; send synthesize-start first")
        return self._stream

    def _open(self, voice: str | None) -> _Request:
        resolved = self._engine.resolve_voice(voice)
        output = SocketOutput(
            PcmEncoder(resolved.sample_rate),
            self._send_audio(resolved.sample_rate),
            self._send_text,
            patience(self._settings),
            self._not_reading,
        )
        session = Session(
            self._engine,
            output,
            lambda event: self._on_event(output, resolved.sample_rate, event),
            self._limits,
            ROUTE,
            self._observer,
            resolved.id,
        )
        return _Request(session, output, asyncio.Event())

    def _on_event(self, output: SocketOutput, rate: int, event: SessionEvent) -> None:
        audio = {"rate": rate, "width": WIDTH, "channels": CHANNELS}
        if isinstance(event, AudioStart):
            output.send_now(_text_of(WyomingEvent("audio-start", audio)))
        elif isinstance(event, Done):
            output.send_now(_text_of(WyomingEvent("audio-stop")))
        elif isinstance(event, Error):
            output.send_now(_text_of(_error(event.code, event.message)))

    async def _finish(self, request: _Request) -> None:
        """Wait until the request's audio and its last event have gone (or it failed, or the client did), then
        close it."""
        request.session.after_queued(request.ended.set)
        waits = [asyncio.create_task(request.ended.wait()), asyncio.create_task(self._gone.wait())]
        try:
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in waits:
                task.cancel()
            await asyncio.gather(*waits, return_exceptions=True)
            await _close(request)

    def _send_audio(self, rate: int) -> Callable[[bytes], Awaitable[None]]:
        async def send(data: bytes) -> None:
            audio = {"rate": rate, "width": WIDTH, "channels": CHANNELS}
            await self._write(encode_event(WyomingEvent("audio-chunk", audio, data)))

        return send

    async def _send_text(self, text: str) -> None:
        await self._write(text.encode())

    async def _send(self, event: WyomingEvent) -> None:
        await self._write(encode_event(event))

    async def _write(self, data: bytes) -> None:
        try:
            self._writer.write(data)
            await self._writer.drain()
        except ConnectionError:
            self._gone.set()
            raise

    def _not_reading(self, why: str) -> None:
        log.warning("disconnecting a Wyoming client that does not read: %s", why)
        self._gone.set()
        self._writer.transport.abort()

    def _info(self) -> dict[str, object]:
        voices = [
            {
                "name": voice.id,
                "description": voice.name,
                "attribution": ATTRIBUTION,
                "installed": True,
                "version": None,
                "languages": [language.replace("-", "_") for language in voice.languages],
                "speakers": None,
            }
            for voice in self._engine.voices()
        ]
        program = {
            "name": "media-server",
            "description": f"media-server ({self._engine.backend_name})",
            "attribution": ATTRIBUTION,
            "installed": True,
            "version": "0.1.0",
            "voices": voices,
            "supports_synthesize_streaming": True,
        }
        return {"asr": [], "tts": [program], "handle": [], "intent": [], "wake": [], "mic": [], "snd": []}


async def _close(request: _Request) -> None:
    await request.session.close()
    await request.output.drained()
    await request.output.close()


def _text_of(event: WyomingEvent) -> str:
    """A payload-less event as text, for the output's text channel (it keeps it in order with the audio)."""
    return encode_event(event).decode()


def _error(code: str, message: str) -> WyomingEvent:
    return WyomingEvent("error", {"text": message, "code": code})


def _text(data: dict[str, object]) -> str:
    text = data.get("text")
    if not isinstance(text, str):
        raise InvalidRequest("text: required, a string")
    return text


def _ssml(data: dict[str, object]) -> bool:
    text_format = data.get("text_format")
    if text_format not in (None, "text", "ssml"):
        raise InvalidRequest(f"text_format: {text_format!r} is not 'text' or 'ssml'")
    return text_format == "ssml"


def _voice(data: dict[str, object]) -> str | None:
    voice = data.get("voice")
    if voice is None:
        return None
    if not isinstance(voice, dict):
        raise InvalidRequest("voice: must be an object {name?, language?}")
    name = voice.get("name")
    if name is not None and not isinstance(name, str):
        raise InvalidRequest("voice.name: must be a string")
    return name


def wyoming_server(
    engine: Engine, settings: Settings, observer: SessionObserver
) -> contextlib.AbstractAsyncContextManager[None]:
    """Serve Wyoming on `HOST`:`WYOMING_PORT` while the context is open; every connection is closed with it."""

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await WyomingConnection(engine, settings, observer, writer).serve(reader)

    return tcp_server(serve, settings.host, settings.wyoming_port, "Wyoming server", settings.max_message_bytes)
