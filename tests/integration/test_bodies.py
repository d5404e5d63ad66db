"""Request bodies a client sends too slowly or too large, and uploads that are costly to decode, on a real server.

One server with a short body deadline and a small upload limit. The slow
client is a raw TCP socket (no client library trickles a body on purpose);
the uploads use aiohttp's multipart writer.
"""

from __future__ import annotations

import asyncio
import io
import json
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import av
import numpy as np
import pytest

from tests.server import RunningServer, start_server

BODY_TIMEOUT_S = 1.0
MAX_UPLOAD_BYTES = 256 * 1024
BOUNDARY = "slow-boundary"


@pytest.fixture(scope="module")
def bodies() -> Iterator[RunningServer]:
    server = start_server({"BODY_TIMEOUT": str(BODY_TIMEOUT_S), "MAX_UPLOAD_BYTES": str(MAX_UPLOAD_BYTES)})
    yield server
    server.stop()


async def trickled(url: str, path: str, content_type: str) -> tuple[int, dict[str, Any]]:
    """POST a body announced as 1000 bytes but sent a byte every 0.1 s; the status and JSON of the answer."""
    where = urlsplit(url)
    assert where.hostname is not None and where.port is not None
    reader, writer = await asyncio.open_connection(where.hostname, where.port)

    async def feed() -> None:
        while True:
            writer.write(b" ")
            await writer.drain()
            await asyncio.sleep(0.1)

    head = (
        f"POST {path} HTTP/1.1\r\nHost: {where.netloc}\r\nContent-Type: {content_type}\r\nContent-Length: 1000\r\n\r\n"
    )
    writer.write(head.encode())
    feeder = asyncio.create_task(feed())
    try:
        async with asyncio.timeout(20):
            status_line, *header_lines = (await reader.readuntil(b"\r\n\r\n")).decode().split("\r\n")
            headers = dict(line.split(": ", 1) for line in header_lines if line)
            body = await reader.readexactly(int(headers["Content-Length"]))
    finally:
        feeder.cancel()
        writer.close()
    return int(status_line.split()[1]), json.loads(body)


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("path", "content_type"),
    [
        ("/tts", "application/json"),
        ("/rtc/offer", "application/json"),
        ("/v1/voices", f"multipart/form-data; boundary={BOUNDARY}"),
    ],
)
async def test_a_trickled_body_is_cut_off_at_the_deadline(bodies: RunningServer, path: str, content_type: str) -> None:
    started = time.monotonic()
    status, error = await trickled(bodies.url, path, content_type)
    assert (status, error["error"]["code"]) == (408, "body_timeout")
    assert "BODY_TIMEOUT" in error["error"]["message"]
    assert time.monotonic() - started >= BODY_TIMEOUT_S


async def post_form(http: aiohttp.ClientSession, path: str, data: Any, **kwargs: Any) -> tuple[int, dict[str, Any]]:
    async with http.post(path, data=data, **kwargs) as resp:
        return resp.status, await resp.json()


def reference_form(audio: bytes) -> aiohttp.FormData:
    form = aiohttp.FormData()
    form.add_field("audio", audio, filename="reference.flac", content_type="audio/flac")
    return form


@pytest.mark.asyncio
async def test_an_upload_over_the_limit_is_refused(bodies: RunningServer) -> None:
    async with aiohttp.ClientSession(bodies.url) as http:
        status, error = await post_form(http, "/v1/voices", reference_form(bytes(MAX_UPLOAD_BYTES + 1)))
    assert (status, error["error"]["code"]) == (413, "body_too_large")
    assert "MAX_UPLOAD_BYTES" in error["error"]["message"]


@pytest.mark.asyncio
async def test_a_chunked_upload_is_held_to_the_limit_too(bodies: RunningServer) -> None:
    field = b"n" * (32 * 1024)  # each field within its own limit; together over the upload limit

    async def many_fields() -> AsyncIterator[bytes]:
        for _ in range(2 * MAX_UPLOAD_BYTES // len(field)):
            yield f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="name"\r\n\r\n'.encode() + field + b"\r\n"
        yield f"--{BOUNDARY}--\r\n".encode()

    headers = {"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}
    async with aiohttp.ClientSession(bodies.url) as http:
        status, error = await post_form(http, "/v1/voices", many_fields(), headers=headers)
    assert (status, error["error"]["code"]) == (413, "body_too_large")


def silent_flac(seconds: float, rate: int) -> bytes:
    """A small FLAC file (silence compresses to almost nothing) holding `seconds` of 8 channels at `rate`."""
    out = io.BytesIO()
    with av.open(out, "w", format="flac") as container:
        stream = container.add_stream("flac", rate=rate, layout="7.1")
        block = rate // 10
        silence = np.zeros((1, block * 8), np.int16)
        for index in range(int(seconds * 10)):
            frame = av.AudioFrame.from_ndarray(silence, format="s16", layout="7.1")
            frame.sample_rate = rate
            frame.pts = index * block
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return out.getvalue()


@pytest.mark.asyncio
async def test_decoding_an_upload_leaves_the_event_loop_free(bodies: RunningServer) -> None:
    # Under 64 KB that decode to 59 s of 8 channels at 655 kHz: a second or more of decoding.
    reference = await asyncio.to_thread(silent_flac, 59.0, 655350)
    assert len(reference) < MAX_UPLOAD_BYTES
    async with aiohttp.ClientSession(bodies.url) as http:
        started = time.monotonic()
        upload = asyncio.create_task(post_form(http, "/v1/voices", reference_form(reference)))
        round_trips = []
        while not upload.done():
            sent = time.monotonic()
            async with http.get("/healthz") as resp:
                assert resp.status == 200
            round_trips.append(time.monotonic() - sent)
        status, error = await upload
        took = time.monotonic() - started
    # Decoded to the end, then refused by the embedded voice, which cannot clone.
    assert (status, error["error"]["code"]) == (400, "invalid_request")
    assert "cannot clone" in error["error"]["message"]
    # The server answered all along: no health check waited for the decoding (as one would on the loop).
    assert max(round_trips) < took / 2, (max(round_trips), took)
