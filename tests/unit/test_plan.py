"""A request's plan and its stream, over a fake core: parts by voice, rate and language, exact silences,
resampling to one rate, refusals before anything is submitted, dictionaries applied, ids and deadlines."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from media_server.config import Settings
from media_server.engine.catalog import VoiceCatalog
from media_server.engine.front import EngineFront
from media_server.engine.plan import Silence, Speech, plan
from media_server.engine.types import (
    PHONEMES,
    Priority,
    SynthesisRequest,
    Voice,
)
from media_server.engine.words import WordTracker
from media_server.errors import (
    Busy,
    InvalidRequest,
    InvalidSsml,
    MediaServerError,
    NothingToSpeak,
    TextTooLong,
    UnknownVoice,
    UnsupportedLanguage,
)
from media_server.text.lexicon import Lexicon, rules_from_json
from media_server.text.spoken import spoken_text
from tests.fakes import FakeCore
from tests.ssml_input import SSML_DOCUMENTS

JOE = Voice(
    id="joe", name="Joe", backend="piper", languages=("en", "en-US"), sample_rate=22050, capabilities=(PHONEMES,)
)
AMELIE = Voice(id="amelie", name="Amélie", backend="qwen", languages=("fr", "en"), sample_rate=24000)
NOTHING = Lexicon([])


def planned(text: str, ssml: bool = True, lexicon: Lexicon = NOTHING, **fields: object) -> list[Speech | Silence]:
    request = SynthesisRequest(text=text, ssml=ssml, id="r", **fields)  # type: ignore[arg-type]
    return plan(request, VoiceCatalog(lambda: (JOE, AMELIE), 5000), lexicon, 5000)


def described(parts: list[Speech | Silence]) -> list[tuple[object, ...]]:
    return [
        (p.request.id, p.request.text, p.request.ssml, p.voice.id, p.language, p.request.speed)
        if isinstance(p, Speech)
        else ("silence", p.seconds)
        for p in parts
    ]


def test_a_plain_request_is_one_part_as_it_came() -> None:
    assert described(planned("Hello there, my friend.", ssml=False)) == [
        ("r", "Hello there, my friend.", False, "joe", "en", 1.0)
    ]


def test_breaks_voices_and_rates_cut_parts_and_neighbours_alike_join() -> None:
    document = (
        '<speak>Hello <prosody rate="100%">world</prosody>.<break time="250ms"/>'
        '<prosody rate="50%">Slowly <say-as interpret-as="characters">ok</say-as></prosody> '
        '<voice name="amelie">from Amélie</voice><voice name="amelie" xml:lang="fr">Bonjour</voice></speak>'
    )
    assert described(planned(document, speed=2.0)) == [
        ("r.1", "Hello world.", False, "joe", "en", 2.0),
        ("silence", 0.25),
        ("r.2", '<speak>Slowly <say-as interpret-as="characters">ok</say-as> </speak>', True, "joe", "en", 1.0),
        ("r.3", "from Amélie", False, "amelie", "en", 2.0),
        ("r.4", "Bonjour", False, "amelie", "fr", 2.0),
    ]


def test_dictionaries_apply_to_plain_text_and_phonemes_travel_as_inline_ssml() -> None:
    lexicon = Lexicon(
        rules_from_json(
            [
                {"string_to_replace": "Nginx", "type": "alias", "alias": "engine x"},
                {"string_to_replace": "tomato", "type": "phoneme", "phoneme": "təˈmɑːtoʊ"},
            ]
        )
    )
    assert described(planned("Nginx & tomato", ssml=False, lexicon=lexicon)) == [
        (
            "r",
            '<speak><sub alias="engine x">Nginx</sub> &amp; <phoneme alphabet="ipa" ph="təˈmɑːtoʊ">tomato</phoneme>'
            "</speak>",
            True,
            "joe",
            "en",
            1.0,
        )
    ]
    # An alias travels as <sub>, so word timings can name the word as written.
    assert described(planned("Nginx rocks", ssml=False, lexicon=lexicon))[0][1:3] == (
        '<speak><sub alias="engine x">Nginx</sub> rocks</speak>',
        True,
    )


@pytest.mark.parametrize(
    ("document", "error", "message"),
    [
        ('<speak><voice name="nobody">x</voice></speak>', UnknownVoice,
         "ssml: line 1, column 8: voice: unknown voice 'nobody'"),
        ('<speak><lang xml:lang="ja">x</lang></speak>', UnsupportedLanguage,
         "ssml: line 1, column 8: language: no loaded voice speaks 'ja'"),
        ('<speak><prosody rate="x-fast">x</prosody></speak>', InvalidRequest,
         "ssml: line 1, column 8: speed (the request's speed times the prosody rate): 7.0 is outside [0.25, 4]"),
        ('<speak><break time="1s"/>.</speak>', NothingToSpeak, "text: the SSML has no letter"),
        ("<speak>unclosed", InvalidSsml, "ssml: line 1, column 16: no element found"),
    ],
)  # fmt: skip
def test_everything_in_a_document_is_checked_before_anything_is_submitted(
    document: str, error: type[Exception], message: str
) -> None:
    with pytest.raises(error) as refused:
        planned(document, speed=4.0 if "x-fast" in document else 1.0)
    assert str(refused.value).startswith(message)


def test_aliases_may_not_grow_a_text_without_bound() -> None:
    lexicon = Lexicon(rules_from_json([{"string_to_replace": "a", "type": "alias", "alias": "x" * 500}]))
    with pytest.raises(TextTooLong, match="grows to"):
        planned("a " * 100, ssml=False, lexicon=lexicon)


def front(core: FakeCore, tmp_path: Path) -> EngineFront:
    return EngineFront(core, Settings(dictionary_dir=str(tmp_path)))


@pytest.mark.asyncio
async def test_parts_play_in_order_with_exact_silence_at_one_rate(tmp_path: Path) -> None:
    core = FakeCore(known=(JOE, AMELIE), script=(2205, 2205))
    document = '<speak>One.<break time="500ms"/><voice name="amelie">Two.</voice><break time="1ms"/>Three.</speak>'
    request = SynthesisRequest(text=document, ssml=True, priority=Priority.REALTIME)
    async with front(core, tmp_path).stream(request) as stream:
        assert len(core.streams) == 1  # the first part is admitted at once, the rest when their turn comes
        assert (stream.voice, stream.sample_rate) == (JOE, 22050)
        chunks = [chunk async for chunk in stream]
    assert [s.request.text for s in core.streams] == ["One.", "Two.", "Three."]
    sizes = [len(chunk.pcm) for chunk in chunks]
    assert sizes[:3] == [2205, 2205, 11025]  # 500 ms of 22050 Hz, in zeros
    assert not chunks[2].pcm.any() and not chunks[-3].pcm.any() and len(chunks[-3].pcm) == 22  # 1 ms
    amelie = sum(sizes[3:-3])  # 2 x 2205 samples at 24 kHz, resampled to 22.05 kHz
    assert abs(amelie - 2 * 2205 * 22050 / 24000) <= 64
    assert {chunk.sample_rate for chunk in chunks} == {22050}
    assert [chunk.index for chunk in chunks] == list(range(len(chunks)))
    later = core.streams[1].request
    assert later.deadline is not None and later.deadline > later.received_at  # due when what came before has played


@pytest.mark.asyncio
async def test_a_later_part_refused_ends_the_stream_with_that_error_and_closing_stops_the_part(tmp_path: Path) -> None:
    core = FakeCore(known=(JOE, AMELIE), admits=1)
    stream = front(core, tmp_path).stream(SynthesisRequest(text="<speak>One<break/>Two</speak>", ssml=True))
    with pytest.raises(Busy):
        _ = [chunk async for chunk in stream]
    core = FakeCore(known=(JOE, AMELIE), script=(2205, 2205))
    stream = front(core, tmp_path).stream(SynthesisRequest(text="<speak>One<break/>Two</speak>", ssml=True))
    await stream.__anext__()
    stream.close()
    assert core.streams[0].closed and len(core.streams) == 1
    with pytest.raises(StopAsyncIteration):
        await asyncio.wait_for(stream.__anext__(), 1)


@pytest.mark.asyncio
async def test_the_first_part_refused_refuses_the_request(tmp_path: Path) -> None:
    with pytest.raises(Busy):
        front(FakeCore(known=(JOE, AMELIE), admits=0), tmp_path).stream(
            SynthesisRequest(text="<speak>a<break/>b</speak>", ssml=True)
        )


@settings(max_examples=400, deadline=None, derandomize=True, database=None)
@given(document=SSML_DOCUMENTS, phonemes=st.booleans())
def test_any_document_is_planned_or_refused_as_a_client_error_and_every_part_is_speakable(
    document: str, phonemes: bool
) -> None:
    try:
        parts = planned(document)
    except MediaServerError as exc:
        assert exc.status < 500, exc
        return
    for part in parts:
        if isinstance(part, Speech):
            spoken = spoken_text(part.request.text, part.request.ssml, part.language, phonemes)
            WordTracker(spoken.written, spoken.said, 22050)  # the engine times each part's words
