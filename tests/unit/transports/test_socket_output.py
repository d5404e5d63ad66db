"""The socket output against fake send functions: order of texts and audio, marks, cuts, framing, back-pressure,
and giving up on a client that does not read."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import numpy as np
import pytest

from media_server.audio.codecs import MulawEncoder, PcmEncoder, StreamEncoder
from media_server.audio.pcm import Pcm
from media_server.session.events import Word
from media_server.session.output import PlayoutEnd, PlayoutEvent, PlayoutStart
from media_server.transports.socket_output import Framing, Patience, SocketOutput
from tests.fakes import until

RATE = 24000
UNBOUNDED = Patience(max_unsent_bytes=0, send_timeout_s=0)
Sent = tuple[str, object]


def tone(samples: int) -> Pcm:
    return np.full(samples, 1000, dtype=np.int16)


class Wire:
    """The client's side of the socket: what was sent, in order; while `open` is clear, every send waits."""

    def __init__(self) -> None:
        self.sent: list[Sent] = []
        self.open = asyncio.Event()
        self.open.set()
        self.waiting = 0
        self.gave_up: list[str] = []
        self.budget: int | None = None
        """Sends that may go before `open` closes by itself (None: no limit)."""

    async def audio(self, data: bytes) -> None:
        await self._wait()
        self.sent.append(("audio", data))

    async def text(self, text: str) -> None:
        await self._wait()
        self.sent.append(("text", text))

    def playout(self, event: PlayoutEvent) -> None:
        self.sent.append(("playout", event))

    def texts(self) -> list[object]:
        return [payload for kind, payload in self.sent if kind == "text"]

    def audio_sizes(self) -> list[int]:
        return [len(payload) for kind, payload in self.sent if isinstance(payload, bytes)]

    async def _wait(self) -> None:
        if self.budget == 0:
            self.open.clear()
        elif self.budget is not None:
            self.budget -= 1
        self.waiting += 1
        try:
            await self.open.wait()
        finally:
            self.waiting -= 1


@asynccontextmanager
async def socket_output(
    wire: Wire,
    encoder: StreamEncoder | None = None,
    patience: Patience = UNBOUNDED,
    framing: Framing | None = None,
    max_items: int = 8,
    underruns: list[float] | None = None,
) -> AsyncIterator[SocketOutput]:
    output = SocketOutput(
        encoder or PcmEncoder(RATE),
        wire.audio,
        wire.text,
        patience,
        wire.gave_up.append,
        framing,
        max_items,
        None if underruns is None else underruns.append,
    )
    output.report_to(wire.playout)
    try:
        yield output
    finally:
        await output.close()


@pytest.mark.asyncio
async def test_texts_go_before_queued_audio_and_each_chunk_leaves_whole_between_start_and_end() -> None:
    wire = Wire()
    async with socket_output(wire) as output:
        await output.write("u", tone(480))
        await output.write("u", tone(240))
        output.end("u")
        output.send_now("started")
        await until(lambda: any(kind == "playout" and isinstance(e, PlayoutEnd) for kind, e in wire.sent))
    assert wire.sent == [
        ("text", "started"),
        ("playout", PlayoutStart("u")),
        ("audio", tone(480).tobytes()),
        ("audio", tone(240).tobytes()),
        ("playout", PlayoutEnd("u", 720)),
    ]


@pytest.mark.asyncio
async def test_an_event_sent_at_an_utterances_start_precedes_its_first_bytes() -> None:
    wire = Wire()
    async with socket_output(wire) as output:

        def answer(event: PlayoutEvent) -> None:
            wire.playout(event)
            output.send_now(type(event).__name__)

        output.report_to(answer)
        await output.write("u", tone(480))
        output.end("u")
        await until(lambda: "PlayoutEnd" in wire.texts())
    kinds = [payload if kind == "text" else kind for kind, payload in wire.sent]
    assert kinds == ["playout", "PlayoutStart", "audio", "playout", "PlayoutEnd"]


@pytest.mark.asyncio
async def test_after_audio_waits_for_the_audio_queued_before_it() -> None:
    wire = Wire()
    async with socket_output(wire) as output:
        await output.write("u", tone(480))
        output.after_audio("mark")
        await output.write("v", tone(240))
        await until(lambda: wire.audio_sizes() == [960, 480])
    order = [kind if kind != "text" else payload for kind, payload in wire.sent if kind != "playout"]
    assert order == ["audio", "mark", "audio"]


@pytest.mark.asyncio
async def test_clear_stops_the_audio_reports_the_cut_and_keeps_the_marks() -> None:
    wire = Wire()
    wire.open.clear()
    async with socket_output(wire) as output:
        for _ in range(3):
            await output.write("u", tone(480))
        output.after_audio("echo")
        output.end("u")
        await until(lambda: wire.waiting == 1)  # the first chunk is on its way
        assert output.clear() == ("u", 480)
        wire.open.set()
        await until(lambda: wire.texts() == ["echo"])
    assert wire.sent == [("playout", PlayoutStart("u")), ("audio", tone(480).tobytes()), ("text", "echo")]


@pytest.mark.asyncio
async def test_discard_drops_one_utterance_and_its_end_reports_what_left() -> None:
    wire = Wire()
    async with socket_output(wire) as output:
        await output.write("u", tone(480))
        await output.write("v", tone(480))
        output.discard("v")
        output.end("u")
        output.end("v")
        await until(lambda: ("playout", PlayoutEnd("v", 0)) in wire.sent)
    assert wire.sent == [
        ("playout", PlayoutStart("u")),
        ("audio", tone(480).tobytes()),
        ("playout", PlayoutEnd("u", 480)),
        ("playout", PlayoutEnd("v", 0)),
    ]


@pytest.mark.asyncio
async def test_write_waits_while_the_queue_is_full() -> None:
    wire = Wire()
    wire.open.clear()
    async with socket_output(wire, max_items=2) as output:
        await output.write("u", tone(480))
        await until(lambda: wire.waiting == 1)
        await output.write("u", tone(480))
        await output.write("u", tone(480))
        blocked = asyncio.create_task(output.write("u", tone(480)))
        await until(lambda: wire.waiting == 1 and not blocked.done())
        assert not blocked.done()
        wire.open.set()
        await blocked
        output.end("u")
        await until(lambda: ("playout", PlayoutEnd("u", 4 * 480)) in wire.sent)


@pytest.mark.asyncio
async def test_the_stream_header_leads_the_first_audio_only() -> None:
    class Headed(PcmEncoder):
        def header(self) -> bytes:
            return b"HEAD"

    wire = Wire()
    async with socket_output(wire, encoder=Headed(RATE)) as output:
        await output.write("u", tone(2))
        output.end("u")
        await output.write("v", tone(2))
        output.end("v")
        await until(lambda: len(wire.audio_sizes()) == 2)
    first, second = (payload for kind, payload in wire.sent if kind == "audio")
    assert first == b"HEAD" + tone(2).tobytes() and second == tone(2).tobytes()


TELEPHONY_FRAMES = Framing(frame_bytes=160, frame_s=0.020, silence=b"\xff", lead_s=60.0)


@pytest.mark.asyncio
async def test_framing_cuts_audio_into_frames_and_pads_the_last_one_with_silence() -> None:
    wire = Wire()
    async with socket_output(wire, MulawEncoder(8000), framing=TELEPHONY_FRAMES) as output:
        await output.write("u", tone(250))
        await output.write("u", tone(150))
        output.end("u")
        await until(lambda: ("playout", PlayoutEnd("u", 400)) in wire.sent)
    frames = [payload for kind, payload in wire.sent if isinstance(payload, bytes)]
    assert [len(frame) for frame in frames] == [160, 160, 160]
    assert frames[-1].endswith(b"\xff" * 80) and b"\xff" not in frames[0]


@pytest.mark.asyncio
async def test_a_cut_stops_the_frames_of_a_chunk_mid_send() -> None:
    wire = Wire()
    async with socket_output(wire, MulawEncoder(8000), framing=TELEPHONY_FRAMES) as output:
        wire.open.clear()
        await output.write("u", tone(800))  # five frames
        await until(lambda: wire.waiting == 1)
        output.clear()
        wire.open.set()
        await output.write("v", tone(160))
        output.end("v")
        await until(lambda: ("playout", PlayoutEnd("v", 160)) in wire.sent)
    assert wire.audio_sizes() == [160, 160]  # u's frame in flight, then v's


@pytest.mark.asyncio
async def test_a_cut_of_framed_audio_reports_the_frames_sent_not_the_chunk_pulled() -> None:
    wire = Wire()
    wire.budget = 2
    async with socket_output(wire, MulawEncoder(8000), framing=TELEPHONY_FRAMES) as output:
        await output.write("u", tone(800))  # five frames, pulled as one chunk
        await until(lambda: wire.waiting == 1)  # two frames sent, the third on its way
        assert output.clear() == ("u", 320)


@pytest.mark.asyncio
async def test_a_frame_late_in_the_middle_of_an_utterance_is_an_underrun_a_late_first_frame_is_not() -> None:
    wire, underruns = Wire(), list[float]()
    framing = Framing(frame_bytes=160, frame_s=0.020, silence=b"\xff", lead_s=0.0)
    async with socket_output(wire, MulawEncoder(8000), framing=framing, underruns=underruns) as output:
        await output.write("u", tone(160))
        await until(lambda: wire.audio_sizes() == [160])
        await asyncio.sleep(0.05)  # the next frame was due 20 ms after the first: it is at least 30 ms late
        await output.write("u", tone(160))
        output.end("u")
        await until(lambda: ("playout", PlayoutEnd("u", 320)) in wire.sent)
        assert len(underruns) == 1 and underruns[0] >= 0.03
        await asyncio.sleep(0.05)
        await output.write("v", tone(160))  # a new utterance starts whenever it comes
        output.end("v")
        await until(lambda: ("playout", PlayoutEnd("v", 160)) in wire.sent)
    assert len(underruns) == 1


@pytest.mark.asyncio
async def test_a_sender_held_up_by_the_event_loop_catches_up_without_an_underrun() -> None:
    wire, underruns = Wire(), list[float]()
    framing = Framing(frame_bytes=160, frame_s=0.020, silence=b"\xff", lead_s=0.0)

    async def stalling_audio(data: bytes) -> None:
        if len(wire.audio_sizes()) == 1:
            time.sleep(0.05)  # noqa: ASYNC251  (the point: an event loop held up for 50 ms, 2.5 frames)
        await wire.audio(data)

    output = SocketOutput(
        MulawEncoder(8000), stalling_audio, wire.text, UNBOUNDED, wire.gave_up.append, framing, 8, underruns.append
    )
    output.report_to(wire.playout)
    try:
        await output.write("u", tone(800))  # five frames
        output.end("u")
        await until(lambda: ("playout", PlayoutEnd("u", 800)) in wire.sent)
    finally:
        await output.close()
    assert wire.audio_sizes() == [160] * 5 and underruns == []


@pytest.mark.asyncio
async def test_a_send_that_waits_past_the_timeout_gives_up_on_the_client() -> None:
    wire = Wire()
    wire.open.clear()
    async with socket_output(wire, patience=Patience(max_unsent_bytes=0, send_timeout_s=0.01)) as output:
        await output.write("u", tone(480))
        await until(lambda: bool(wire.gave_up))
        output.send_now("ignored: the output gave up")
    assert wire.gave_up == ["a send waited over 0.01 s for it to read"]


@pytest.mark.asyncio
async def test_unsent_texts_past_the_bound_give_up_on_the_client_at_once() -> None:
    wire = Wire()
    wire.open.clear()
    async with socket_output(wire, patience=Patience(max_unsent_bytes=10, send_timeout_s=0)) as output:
        output.send_now("12345")
        output.after_audio("1234")
        assert wire.gave_up == []
        output.send_now("12")
        assert wire.gave_up == ["over 10 bytes of events wait for it to read"]
        output.send_now("more")
        assert len(wire.gave_up) == 1


@pytest.mark.asyncio
async def test_words_are_reported_once_the_chunk_that_starts_them_was_sent() -> None:
    wire = Wire()
    async with socket_output(wire) as output:
        output.report_to(wire.playout)
        await output.write("u", tone(480), [(100, Word("hi", 5, 20))])
        output.end("u")
        await until(lambda: any(isinstance(event, PlayoutEnd) for kind, event in wire.sent if kind == "playout"))
    kinds = [type(payload).__name__ if kind == "playout" else kind for kind, payload in wire.sent]
    assert kinds == ["PlayoutStart", "audio", "PlayoutWords", "PlayoutEnd"]
