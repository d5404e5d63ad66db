"""Structured logging: JSON lines, bound ids, privacy of texts and secrets, the latency line."""

from __future__ import annotations

import asyncio
import io
import json
import logging
from collections.abc import AsyncIterator, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from media_server.config import Settings
from media_server.errors import ConfigError
from media_server.observability.logging import (
    REQUEST_ID_HEADER,
    LatencyBreakdown,
    bound,
    configure_logging,
    echo_request_id,
    request_id_middleware,
)

log = logging.getLogger("media_server.test")


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root, aioice = logging.getLogger(), logging.getLogger("aioice")
    handlers, level, aioice_level = list(root.handlers), root.level, aioice.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    aioice.setLevel(aioice_level)


@pytest.fixture
def stream(restore_logging: None) -> io.StringIO:
    out = io.StringIO()
    configure_logging("DEBUG", json=True, stream=out)
    return out


def lines(out: io.StringIO) -> list[dict[str, Any]]:
    """This module's lines (asyncio logs at DEBUG too)."""
    parsed = [json.loads(line) for line in out.getvalue().splitlines()]
    return [line for line in parsed if line["logger"] == log.name]


def test_one_json_object_per_line_with_the_base_fields(stream: io.StringIO) -> None:
    log.info("hello %s", "there")
    log.warning("second")
    first, second = lines(stream)
    assert first["message"] == "hello there"
    assert first["level"] == "INFO" and first["logger"] == "media_server.test"
    assert datetime.fromisoformat(first["time"]).utcoffset() is not None
    assert second["level"] == "WARNING"
    assert "request_id" not in first


def test_bound_ids_are_on_every_line_inside_the_block_and_nest(stream: io.StringIO) -> None:
    with bound(session_id="s1"):
        log.info("a")
        with bound(request_id="r1"):
            log.info("b")
        log.info("c")
    log.info("d")
    a, b, c, d = lines(stream)
    assert a["session_id"] == "s1" and "request_id" not in a
    assert b["session_id"] == "s1" and b["request_id"] == "r1"
    assert c["session_id"] == "s1" and "request_id" not in c
    assert "session_id" not in d


@pytest.mark.asyncio
async def test_bound_ids_follow_tasks_started_inside_the_block(stream: io.StringIO) -> None:
    async def speak() -> None:
        log.info("from a task")

    with bound(session_id="s2"):
        task = asyncio.create_task(speak())
    # The task runs after the block ended, with the ids it was created under.
    await task
    with bound(session_id="s3"):
        await asyncio.to_thread(log.info, "from a thread")
    log.info("after")
    in_task, in_thread, after = lines(stream)
    assert in_task["session_id"] == "s2" and in_thread["session_id"] == "s3"
    assert "session_id" not in after


def test_extra_fields_are_kept_and_made_serializable(stream: io.StringIO) -> None:
    log.info("loaded", extra={"voice": "joe", "seconds": 1.5, "path": Path("/tmp/x"), "level": "mine"})
    (line,) = lines(stream)
    assert line["voice"] == "joe" and line["seconds"] == 1.5 and line["path"] == "/tmp/x"
    # An extra field never overrides a base field.
    assert line["level"] == "INFO"


def test_texts_become_lengths_and_secrets_are_masked(stream: io.StringIO) -> None:
    text = "My account number is 12345."
    log.info("speak", extra={"text": text, "api_key": "sk-live-1", "authorization": "Bearer x"})
    log.debug("speak", extra={"text": text})
    info, debug = lines(stream)
    assert info["text_chars"] == len(text) and "text" not in info
    assert info["api_key"] == "***" and info["authorization"] == "***"
    assert text not in json.dumps(info) and "sk-live-1" not in json.dumps(info)
    assert debug["text"] == text


def test_exceptions_are_logged_with_their_traceback(stream: io.StringIO) -> None:
    try:
        raise ValueError("bad value")
    except ValueError:
        log.exception("failed")
    (line,) = lines(stream)
    assert line["message"] == "failed"
    assert "ValueError: bad value" in line["exception"] and "Traceback" in line["exception"]


def test_configure_logging_replaces_its_own_handler_and_sets_levels(restore_logging: None) -> None:
    first, second = io.StringIO(), io.StringIO()
    configure_logging("info", json=True, stream=first)
    configure_logging("warning", json=True, stream=second)
    log.info("dropped")
    log.warning("kept")
    assert first.getvalue() == ""
    assert [line["message"] for line in lines(second)] == ["kept"]
    assert logging.getLogger().level == logging.WARNING
    assert logging.getLogger("aioice").level == logging.WARNING
    with pytest.raises(ConfigError, match="LOG_LEVEL='LOUD'"):
        Settings.from_env({"LOG_LEVEL": "loud"})


def test_text_lines_carry_ids_and_fields(restore_logging: None) -> None:
    out = io.StringIO()
    configure_logging("INFO", json=False, stream=out)
    with bound(request_id="r9"):
        log.info("ready", extra={"voices": 3})
    log.info("plain")
    with_ids, plain = out.getvalue().splitlines()
    assert with_ids.endswith("INFO media_server.test: ready [request_id=r9 voices=3]")
    assert plain.endswith("INFO media_server.test: plain")


FORGED_ID = "u1\n2026-01-01 00:00:00,000 INFO media_server.fake: forged\u2028\x85\x1b[31m"
FORGED_ID_ESCAPED = "u1\\u000a2026-01-01 00:00:00,000 INFO media_server.fake: forged\\u2028\\u0085\\u001b[31m"


@pytest.mark.parametrize("as_json", [False, True])
def test_a_client_chosen_id_cannot_break_or_forge_a_line(restore_logging: None, as_json: bool) -> None:
    out = io.StringIO()
    configure_logging("INFO", json=as_json, stream=out)
    log.info("utterance %s done", FORGED_ID, extra={"utterance_id": FORGED_ID})
    (line,) = out.getvalue().splitlines()
    assert not any(char in line for char in "\n\u2028\x85\x1b")
    if as_json:
        parsed = json.loads(line)
        assert parsed["message"] == f"utterance {FORGED_ID} done" and parsed["utterance_id"] == FORGED_ID
    else:
        assert line.count(FORGED_ID_ESCAPED) == 2  # in the message and in the field


def test_latency_breakdown_is_one_line_with_every_number_in_ms(stream: io.StringIO) -> None:
    breakdown = LatencyBreakdown(
        utterance_id="u1",
        route="webrtc",
        text_chars=42,
        text_prep_s=0.0012,
        queue_wait_s=0.003,
        first_chunk_s=0.035,
        first_send_s=0.0456,
        total_s=1.25,
        audio_s=2.4,
    )
    with bound(session_id="s3"):
        breakdown.log(log)
    (line,) = lines(stream)
    assert line["message"] == (
        "utterance u1 on webrtc: first audio after 45.6 ms (text 1.2, queue 3.0, first chunk 35.0), "
        "2400 ms of audio in 1250 ms"
    )
    assert line["session_id"] == "s3"
    assert {key: line[key] for key in breakdown.fields()} == {
        "utterance_id": "u1",
        "route": "webrtc",
        "text_chars": 42,
        "text_prep_ms": 1.2,
        "queue_wait_ms": 3.0,
        "first_chunk_ms": 35.0,
        "first_send_ms": 45.6,
        "total_ms": 1250.0,
        "audio_ms": 2400.0,
    }


async def plain(request: web.Request) -> web.Response:
    log.info("handling")
    return web.Response(text="ok")


async def streamed(request: web.Request) -> web.StreamResponse:
    response = web.StreamResponse()
    await response.prepare(request)
    log.info("streaming")
    await response.write(b"chunk")
    return response


@pytest_asyncio.fixture
async def client(stream: io.StringIO) -> AsyncIterator[TestClient[web.Request, web.Application]]:
    app = web.Application(middlewares=[request_id_middleware])
    app.on_response_prepare.append(echo_request_id)
    app.router.add_get("/plain", plain)
    app.router.add_get("/streamed", streamed)
    async with TestClient(TestServer(app)) as test_client:
        yield test_client


@pytest.mark.asyncio
async def test_each_request_gets_an_id_on_its_log_lines_and_response(
    client: TestClient[web.Request, web.Application], stream: io.StringIO
) -> None:
    async with client.get("/plain") as resp:
        generated = resp.headers[REQUEST_ID_HEADER]
    async with client.get("/streamed", headers={REQUEST_ID_HEADER: "abc-123"}) as resp:
        assert resp.headers[REQUEST_ID_HEADER] == "abc-123"
        assert await resp.read() == b"chunk"
    async with client.get("/plain", headers={REQUEST_ID_HEADER: "x" * 200}) as resp:
        replaced = resp.headers[REQUEST_ID_HEADER]
    assert len(generated) == 32 and int(generated, 16) >= 0
    assert len(replaced) == 32 and replaced != generated
    assert [(line["message"], line["request_id"]) for line in lines(stream)] == [
        ("handling", generated),
        ("streaming", "abc-123"),
        ("handling", replaced),
    ]
