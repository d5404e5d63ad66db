"""Command line: `media-server serve | say | voices`."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from dataclasses import replace
from pathlib import Path

from aiohttp import web

from media_server.app import build_app, build_engine
from media_server.audio.wav import wav_header
from media_server.config import Settings
from media_server.engine.types import Priority, SynthesisRequest
from media_server.errors import MediaServerError
from media_server.observability.logging import configure_logging

log = logging.getLogger("media_server")

EPILOG = """\
examples:
  media-server serve                       # http://127.0.0.1:8080, open it in a browser
  media-server serve --host 0.0.0.0 --port 9000
  media-server say "Hello there." -o hello.wav
  media-server say "Hello there." | aplay  # WAV on stdout
  media-server voices

Every setting is also an environment variable (HOST, PORT, TTS_BACKEND, ...);
see the README's configuration table.
"""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="media-server",
        description="Real-time WebRTC voice media server: text in, speech out.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the HTTP/WebRTC server")
    serve.add_argument("--host", help="address to listen on (env HOST, default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="TCP port (env PORT, default 8080)")
    serve.add_argument("--unix", help="also listen on this Unix socket path (env UNIX)")
    serve.add_argument("--backend", dest="tts_backend", help="speech backend (env TTS_BACKEND, default piper)")
    serve.add_argument(
        "--mode",
        choices=("standalone", "gateway", "ray"),
        help="standalone: the model in this process; gateway: in a supervised worker process; "
        "ray: in Ray Serve replicas (env MODE)",
    )
    say = commands.add_parser("say", help="synthesize text to a WAV file, no server needed")
    say.add_argument("text", help="the text to speak")
    say.add_argument("-o", "--output", help="WAV file to write (default: stdout)")
    say.add_argument("--voice", help="voice id (see `media-server voices`)")
    say.add_argument("--speed", type=float, default=1.0, help="speaking rate, 1.0 is normal")
    commands.add_parser("voices", help="list the voices of the configured backend")
    return parser


def _serve(settings: Settings) -> None:
    app = build_app(settings, build_engine(settings))
    where = f"http://{settings.host}:{settings.port}/"
    log.info(
        "listening on %s%s; open it in a browser",
        where,
        f" and unix:{settings.unix}" if settings.unix else "",
    )
    # Handler cancellation stops synthesis for a streaming client that hung up.
    web.run_app(
        app,
        host=settings.host,
        port=settings.port,
        path=settings.unix,
        print=None,
        access_log=None,
        handler_cancellation=True,
    )


async def _say(settings: Settings, text: str, voice: str | None, speed: float) -> tuple[bytes, int]:
    engine = build_engine(replace(settings, mode="standalone"))
    await engine.start()
    try:
        request = SynthesisRequest(text=text, voice=voice, speed=speed, priority=Priority.BATCH)
        async with engine.stream(request) as chunks:
            pcm = b"".join([chunk.pcm.tobytes() async for chunk in chunks])
            return pcm, chunks.sample_rate
    finally:
        await engine.stop()


async def _voices(settings: Settings) -> None:
    engine = build_engine(replace(settings, mode="standalone"))
    await engine.start()
    for voice in engine.voices():
        print(f"{voice.id}\t{voice.backend}\t{','.join(voice.languages)}\t{voice.sample_rate} Hz")
    await engine.stop()


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        overrides = {k: getattr(args, k, None) for k in ("host", "port", "unix", "tts_backend", "mode")}
        settings = Settings.from_env(**overrides)
        configure_logging(settings.log_level, json=settings.log_json)
        if args.command == "serve":
            _serve(settings)
        elif args.command == "say":
            pcm, rate = asyncio.run(_say(settings, args.text, args.voice, args.speed))
            data = wav_header(rate, len(pcm)) + pcm
            if args.output:
                Path(args.output).write_bytes(data)
            else:
                sys.stdout.buffer.write(data)
        else:
            asyncio.run(_voices(settings))
    except MediaServerError as exc:
        print(f"media-server: {exc.code}: {exc.message}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
