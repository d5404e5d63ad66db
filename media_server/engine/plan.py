"""A request's plan: what the engine front submits to its core, part by part (speech, and silence between).

A plain request is one part, its text as given. An SSML one
(`media_server.text.ssml`) is cut wherever the voice, the rate or the language
changes and at every `<break>`; each part of speech becomes a request of its
own to the core, carrying its inline SSML (say-as, phonemes) as a fragment,
and each break exact silence (`PlanStream`). Pronunciation dictionaries are
applied to the plain text of every part first.

Everything is checked here, before anything is submitted: the text, every
voice and language the document names, every rate (the request's `speed`
times its `<prosody rate>`, within the one range of `speed`), and the length
the text grows to with its aliases. Language "auto" is decided once for the
whole request (`VoiceCatalog.detect`) on the words it says, and parts that
name their own language (`xml:lang`) keep it.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, replace

from media_server.engine.catalog import VoiceCatalog, speaks
from media_server.engine.parameters import PARAMETERS, check_parameters
from media_server.engine.types import SynthesisRequest, Voice
from media_server.errors import MediaServerError, NothingToSpeak, TextTooLong
from media_server.text.lexicon import Lexicon
from media_server.text.ssml import Inline, Pause, Run, Text, flatten, fragment, parse

EXPANSION_FACTOR = 2
"""A request's text may grow to this many times `MAX_TEXT_CHARS` with its dictionaries' aliases."""


@dataclass(frozen=True)
class Speech:
    request: SynthesisRequest
    voice: Voice
    language: str


@dataclass(frozen=True)
class Silence:
    seconds: float


Part = Speech | Silence


def plan(request: SynthesisRequest, catalog: VoiceCatalog, lexicon: Lexicon, max_text_chars: int) -> list[Part]:
    """The parts `request` is spoken in; raises MediaServerError when anything in it is refused."""
    catalog.validate_text(request.text)
    check_parameters(request)
    if request.ssml:
        pieces = flatten(parse(request.text))
    else:
        pieces = [Run((Text(request.text),), None, 1.0, None, "")]
    pieces = [
        replace(piece, inlines=lexicon.apply(piece.inlines)) if isinstance(piece, Run) else piece for piece in pieces
    ]
    runs = [piece for piece in pieces if isinstance(piece, Run)]
    grown = sum(len(run.spoken) for run in runs)
    if grown > EXPANSION_FACTOR * max_text_chars:
        raise TextTooLong(
            f"text: with its pronunciation rules it grows to {grown} characters, over {EXPANSION_FACTOR} times "
            f"the limit of {max_text_chars}"
        )
    if not any(character.isalnum() for run in runs for character in run.spoken):
        raise NothingToSpeak("text: the SSML has no letter or digit to speak")
    language = request.language.strip()
    auto = language.lower() in ("", "auto")
    if auto:
        undecided = " ".join(run.spoken for run in runs if run.language is None)
        language = catalog.detect(undecided, request.voice, request.fallback_language) if undecided.strip() else ""
    said: list[_Said | Silence] = []
    carried: tuple[Inline, ...] = ()
    for piece in pieces:
        last = said[-1] if said else None
        if isinstance(piece, Pause):
            said.append(Silence(piece.seconds))
        elif not any(character.isalnum() for character in piece.spoken):
            # Punctuation and spaces alone go with the speech before them (or the next).
            if isinstance(last, _Said):
                said[-1] = replace(last, inlines=last.inlines + piece.inlines)
            else:
                carried += piece.inlines
        else:
            spoken = _said(request, piece, catalog, language, auto)
            spoken, carried = replace(spoken, inlines=carried + spoken.inlines), ()
            if isinstance(last, _Said) and last.key == spoken.key:
                said[-1] = replace(last, inlines=last.inlines + spoken.inlines)
            else:
                said.append(spoken)
    speeches = sum(isinstance(part, _Said) for part in said)
    numbers = itertools.count(1)
    parts: list[Part] = []
    for part in said:
        if isinstance(part, _Said):
            part_id = request.id if speeches == 1 else f"{request.id}.{next(numbers)}"
            parts.append(part.speech(request, part_id))
        else:
            parts.append(part)
    return parts


@dataclass(frozen=True)
class _Said:
    """Inline content in one voice, language and speed."""

    voice: Voice
    language: str
    speed: float
    inlines: tuple[Inline, ...]

    @property
    def key(self) -> tuple[str, str, float]:
        return self.voice.id, self.language, self.speed

    def speech(self, request: SynthesisRequest, part_id: str) -> Speech:
        plain = all(isinstance(item, Text) for item in self.inlines)
        text = "".join(item.text for item in self.inlines) if plain else fragment(self.inlines)
        submitted = replace(request, id=part_id, text=text, ssml=not plain, voice=self.voice.id, speed=self.speed)
        return Speech(submitted, self.voice, self.language)


def _said(request: SynthesisRequest, run: Run, catalog: VoiceCatalog, language: str, auto: bool) -> _Said:
    where = f"ssml: {run.where}: " if request.ssml else ""
    voice_id = run.voice or request.voice
    speed = request.speed * run.rate
    PARAMETERS["speed"].check(f"{where}speed (the request's speed times the prosody rate)", speed)
    try:
        if run.language is None and auto and run.voice is not None:
            # A voice the document switches to speaks the request's language if it can, else its own.
            voice = catalog.resolve_voice(voice_id)
            if not speaks(voice, language):
                language = voice.languages[0]
        spoken_in = run.language or language
        voice = catalog.resolve_voice(voice_id, spoken_in)
    except MediaServerError as exc:
        exc.message = where + exc.message
        exc.args = (exc.message,)
        raise
    return _Said(voice, spoken_in, speed, run.inlines)
