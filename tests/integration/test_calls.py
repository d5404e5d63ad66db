"""Telephony calls end to end: a real server with an AudioSocket listener, and fake platforms written from each
protocol's public specification (`clients/telephony.py`: Twilio, Telnyx, Plivo, Vonage, Asterisk AudioSocket),
each sending its caller's audio every 20 ms while an agent drives the call on its control channel.

Cadence is judged statistically so a busy machine cannot fail it by one late frame: the frames that arrive in
a 10 s window (500, give or take a few) and the median gap between them (20 ms +- 2 ms).
"""

from __future__ import annotations

import asyncio
import contextlib
import statistics
import uuid

import aiohttp
import pytest

from clients.metrics import internal_errors, sample, scrape
from clients.telephony import (
    AUDIOSOCKET_SLIN,
    CALL_FRAME_BYTES,
    CALL_PROTOCOLS,
    CALL_ROUTES,
    CONTROL,
    AudioSocketPeer,
    Message,
    Peer,
    WebSocketPeer,
    audiosocket_message,
    controlled_call,
    event,
    media_peer,
    speak,
)
from tests.calls import LONG_TEXT, CallsServer, baseline_tasks, live, settled

CLEARS: dict[str, tuple[str, str]] = {
    "twilio": ("event", "clear"),
    "telnyx": ("event", "clear"),
    "plivo": ("event", "clearAudio"),
    "vonage": ("action", "clear"),
}
MARKS: dict[str, tuple[str, str]] = {
    "twilio": ("event", "mark"),
    "telnyx": ("event", "mark"),
    "plivo": ("event", "checkpoint"),
    "vonage": ("action", "notify"),
}
WINDOW_S = 10.0
FRAME_S = 0.020


@pytest.mark.asyncio
async def test_every_protocol_paces_20_ms_frames_for_10_s_without_drift(calls_server: CallsServer) -> None:
    """The speech comes from the audio cache (warmed first): this measures the pacing, not whether a shared
    machine keeps synthesis ahead of five listeners (`python -m loadtest calls` measures that)."""
    async with aiohttp.ClientSession() as http, contextlib.AsyncExitStack() as stack:
        async with http.post(calls_server.url + "/tts", json={"text": LONG_TEXT}) as resp:
            assert resp.status == 200
        calls = {
            protocol: await stack.enter_async_context(controlled_call(http, calls_server, protocol))
            for protocol in CALL_PROTOCOLS
        }
        for _, control in calls.values():
            await speak(control, LONG_TEXT, "long")
        done = {protocol: await event(control, "done", "long") for protocol, (_, control) in calls.items()}
    for protocol, (peer, _) in calls.items():
        arrivals = [at for at, _ in peer.received.frames]
        assert {len(frame) for _, frame in peer.received.frames} == {CALL_FRAME_BYTES[protocol]}, protocol
        assert done[protocol]["audio_ms"] > (WINDOW_S + 2) * 1000
        start = arrivals[0] + 1.0  # past the first frames, sent ahead of time for the far end's buffer
        window = [at for at in arrivals if start <= at < start + WINDOW_S]
        gaps = [later - earlier for earlier, later in zip(window, window[1:], strict=False)]
        assert abs(len(window) - WINDOW_S / FRAME_S) <= 10, (protocol, len(window))
        assert statistics.median(gaps) == pytest.approx(FRAME_S, abs=0.002), protocol


@pytest.mark.asyncio
async def test_barge_in_stops_every_protocol_within_a_frame_and_says_how_much_was_sent(
    calls_server: CallsServer,
) -> None:
    async def barge_in(protocol: str, peer: Peer, control: WebSocketPeer) -> tuple[int, int, list[int]]:
        await speak(control, LONG_TEXT, "cut")
        await peer.received.wait_for(lambda: len(peer.received.frames) >= 25)
        await control.send({"type": "cancel"})
        cancelled = await event(control, "cancelled", "cut")
        if isinstance(peer, AudioSocketPeer):  # no clear message: its hang-up closes the socket behind the frames
            await peer.hang_up()
            await peer.received.wait_for(lambda: peer.received.closed)
            return cancelled["played_ms"], len(peer.received.frames), []
        key, value = CLEARS[protocol]
        await peer.received.wait_for(lambda: bool(peer.received.of(key, value)))
        return cancelled["played_ms"], len(peer.received.frames), peer.received.frames_before_each(key, value)

    async with aiohttp.ClientSession() as http, contextlib.AsyncExitStack() as stack:
        tasks_before = await baseline_tasks(http, calls_server.url)
        calls = {
            protocol: await stack.enter_async_context(controlled_call(http, calls_server, protocol))
            for protocol in CALL_PROTOCOLS
        }
        results = await asyncio.gather(*(barge_in(p, peer, control) for p, (peer, control) in calls.items()))
        for protocol, (played_ms, frames, before_clear) in zip(calls, results, strict=True):
            sent = played_ms // 20
            assert played_ms > 0 and frames in (sent, sent + 1), (protocol, played_ms, frames)  # + the one in flight
            if protocol != "audiosocket":
                assert before_clear == [frames], protocol  # nothing after the clear
        await stack.aclose()
        await settled(http, calls_server.url, tasks_before)


async def _marks_in_order(protocol: str, peer: Peer, control: WebSocketPeer) -> None:
    assert isinstance(peer, WebSocketPeer)
    key, value = MARKS[protocol]
    expected = ["t1", "m1", "t2", "m2"] if protocol in ("twilio", "telnyx") else ["t1", "t2"]

    def names() -> list[str]:
        marks = peer.received.of(key, value)
        return [
            mark["mark"]["name"] if "mark" in mark else mark.get("name") or mark["payload"]["name"] for mark in marks
        ]

    for n in ("1", "2"):
        text = f"This is utterance {n}."
        if protocol == "twilio":  # its own socket takes text: one connection, one order
            await peer.send({"event": "speak", "text": text, "id": f"t{n}"})
            await peer.send({"event": "mark", "mark": {"name": f"m{n}"}})
        elif protocol == "telnyx":  # text on the control channel, marks on the media socket: no order between them
            await speak(control, text, f"t{n}")
            await event(control, "started", f"t{n}")
            await peer.send({"event": "mark", "mark": {"name": f"m{n}"}})
            await peer.received.wait_count(key, value, 2 * int(n))  # t1, m1 (and t2, m2)
        else:
            await speak(control, text, f"t{n}")
    await peer.received.wait_for(lambda: len(names()) >= len(expected))
    t1 = await event(control, "done", "t1")
    assert names() == expected, protocol
    before = peer.received.frames_before_each(key, value)
    assert before == sorted(before) and before[0] >= t1["audio_ms"] // 20, (protocol, before)
    if protocol in ("twilio", "telnyx"):  # the platform sends each mark back once played: nothing bounces
        for name in expected:
            await peer.send({"event": "mark", "mark": {"name": name}})
        await peer.send({"event": "mark", "mark": {"name": "probe"}})
        await peer.received.wait_for(lambda: names()[-1] == "probe")
        assert names() == [*expected, "probe"], protocol
        assert not peer.received.of("event", "error"), protocol
    else:  # the platform's acknowledgements are taken without a word: the one error is the probe's
        ack = {"event": "playedStream", "name": "t1"} if protocol == "plivo" else {"event": "websocket:notify"}
        await peer.send(ack)
        await peer.send({"event": "probe"})
        await peer.received.wait_for(lambda: bool(peer.received.of("event", "error")))
        assert [error["message"] for error in peer.received.of("event", "error")] == ["event: unknown event 'probe'"]


@pytest.mark.asyncio
async def test_marks_come_in_order_each_after_the_audio_before_it(calls_server: CallsServer) -> None:
    async with aiohttp.ClientSession() as http, contextlib.AsyncExitStack() as stack:
        protocols = ("twilio", "telnyx", "plivo", "vonage")
        calls = {
            protocol: await stack.enter_async_context(controlled_call(http, calls_server, protocol))
            for protocol in protocols
        }
        await asyncio.gather(*(_marks_in_order(p, peer, control) for p, (peer, control) in calls.items()))


@pytest.mark.asyncio
@pytest.mark.parametrize("protocol", CALL_PROTOCOLS)
async def test_a_hang_up_mid_speech_ends_the_call_its_control_channel_and_every_task(
    calls_server: CallsServer, protocol: str
) -> None:
    async with aiohttp.ClientSession() as http:
        tasks_before = await baseline_tasks(http, calls_server.url)
        call_id = str(uuid.uuid4())
        async with media_peer(http, calls_server, protocol, call_id) as peer:
            async with WebSocketPeer.open(http, calls_server.url, CONTROL, call_id, wait_s=10.0) as control:
                during = await scrape(calls_server.url, http=http)
                assert live(during, protocol) == 1 and during.samples[sample("media_server_calls")] == 1
                await speak(control, LONG_TEXT, "long")
                await peer.received.wait_for(lambda: len(peer.received.frames) >= 10)
                await peer.hang_up()
                await control.received.wait_for(lambda: control.received.closed)
                assert control.ws.close_code == aiohttp.WSCloseCode.OK
        after = await settled(http, calls_server.url, tasks_before)
    assert live(after, protocol) == 0


async def _rejected_first_messages(server: CallsServer) -> list[Message]:
    """AudioSocket peers that break the protocol: each is hung up (0x00) and closed, never crashing the server."""
    bad_openings = [
        audiosocket_message(AUDIOSOCKET_SLIN, b"\x00" * 320),  # audio before the UUID
        audiosocket_message(0x01, b"short"),  # a UUID that is not 16 bytes
    ]
    hang_ups = []
    for opening in bad_openings:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.audiosocket_port)
        writer.write(opening)
        async with asyncio.timeout(10):
            hang_ups.append({"reply": await reader.read(), "eof": reader.at_eof()})
        writer.close()
    return hang_ups


@pytest.mark.asyncio
async def test_malformed_frames_and_unknown_kinds_get_an_error_or_a_clean_close(calls_server: CallsServer) -> None:
    async with aiohttp.ClientSession() as http:
        errors_before = internal_errors((await scrape(calls_server.url, http=http)).samples)
        tasks_before = await baseline_tasks(http, calls_server.url)
        assert await _rejected_first_messages(calls_server) == [{"reply": b"\x00\x00\x00", "eof": True}] * 2
        for bad in (b"\x42\x00\x00", audiosocket_message(AUDIOSOCKET_SLIN, b"\x00" * 3), b"\xff\x00\x01\x07"):
            async with media_peer(http, calls_server, "audiosocket", str(uuid.uuid4()), caller_audio=False) as peer:
                assert isinstance(peer, AudioSocketPeer)
                await peer.send(bad)
                await peer.received.wait_for(lambda: peer.received.closed)
                assert peer.received.of("kind", 0) == [{"kind": 0}], bad
        for protocol in ("twilio", "telnyx", "plivo", "vonage"):
            async with controlled_call(http, calls_server, protocol) as (peer, control):
                assert isinstance(peer, WebSocketPeer)
                await peer.ws.send_str("{nope")
                await peer.send({"event": "bogus"})
                if protocol != "vonage":
                    await peer.ws.send_bytes(b"\x00\x01")
                errors = 2 if protocol == "vonage" else 3  # Vonage's binary messages are the caller's audio
                await peer.received.wait_count("event", "error", errors)
                await control.send({"type": "shout"})
                await control.ws.send_str("[]")
                await control.received.wait_count("type", "error", 2)
                await speak(control, "Still here.", "after")  # the call goes on
                await event(control, "done", "after")
                assert len(peer.received.of("event", "error")) == errors  # the control channel's stayed there
            messages = [error["message"] for error in peer.received.of("event", "error")]
            assert messages[1] == "event: unknown event 'bogus'", protocol
        for opening in ({"event": "start"}, {"event": "websocket:connected", "content-type": "audio/l16;rate=16000"}):
            async with http.ws_connect(calls_server.url + "/ws/vonage") as ws:
                await ws.send_json(opening)
                assert (await ws.receive()).type == aiohttp.WSMsgType.CLOSE
                assert ws.close_code == aiohttp.WSCloseCode.POLICY_VIOLATION
        after = await settled(http, calls_server.url, tasks_before)
    assert internal_errors(after.samples) == errors_before


@pytest.mark.asyncio
async def test_an_unknown_call_is_refused_at_the_handshake_and_a_dead_one_ends_its_channel(
    calls_server: CallsServer,
) -> None:
    async with aiohttp.ClientSession() as http:
        async with http.get(calls_server.url + "/ws/calls/no-such-call") as resp:
            assert resp.status == 404 and (await resp.json())["error"]["code"] == "unknown_call"
        call_id = str(uuid.uuid4())
        async with media_peer(http, calls_server, "vonage", call_id) as peer:
            async with contextlib.AsyncExitStack() as stack:
                for _ in range(4):
                    await stack.enter_async_context(
                        WebSocketPeer.open(http, calls_server.url, CONTROL, call_id, wait_s=10.0)
                    )
                async with http.get(calls_server.url + f"/ws/calls/{call_id}") as resp:
                    assert resp.status == 409 and (await resp.json())["error"]["code"] == "too_many_controllers"
            assert isinstance(peer, WebSocketPeer)
        async with http.get(calls_server.url + f"/ws/calls/{call_id}") as resp:
            assert resp.status == 404


MIXED_CALLS = 32
MIXED_TEXT = "Thanks for holding. Your order shipped this morning and should arrive on Thursday afternoon."


@pytest.mark.asyncio
async def test_32_calls_of_every_protocol_at_once_speak_whole_frames_without_an_underrun(
    calls_server: CallsServer,
) -> None:
    """The speech comes from the audio cache (warmed first): this is the call core pacing 32 calls of all five
    protocols at once; whether a shared machine also synthesizes for them in time is `python -m loadtest calls`'s
    measurement (loadtest/RESULTS.md)."""
    protocols = [CALL_PROTOCOLS[n % len(CALL_PROTOCOLS)] for n in range(MIXED_CALLS)]
    async with aiohttp.ClientSession() as http, contextlib.AsyncExitStack() as stack:
        async with http.post(calls_server.url + "/tts", json={"text": MIXED_TEXT}) as resp:
            assert resp.status == 200
        tasks_before = await baseline_tasks(http, calls_server.url)
        calls = [await stack.enter_async_context(controlled_call(http, calls_server, p)) for p in protocols]
        before = await scrape(calls_server.url, http=http)
        assert before.samples[sample("media_server_calls")] == MIXED_CALLS
        for _, control in calls:
            await speak(control, MIXED_TEXT, "mixed")
        done = [await event(control, "done", "mixed") for _, control in calls]
        after = await scrape(calls_server.url, http=http)
        await stack.aclose()
        await settled(http, calls_server.url, tasks_before)
    for protocol in CALL_PROTOCOLS:
        gaps = sample("media_server_underruns_total", route=CALL_ROUTES[protocol])
        assert after.samples[gaps] - before.samples[gaps] == 0, protocol
    for protocol, (peer, _), finished in zip(protocols, calls, done, strict=True):
        frames = peer.received.frames
        assert {len(frame) for _, frame in frames} == {CALL_FRAME_BYTES[protocol]}, protocol
        assert (len(frames) - 1) * 20 <= finished["audio_ms"] <= len(frames) * 20, (protocol, len(frames))
