"""`EngineFront`: the one engine routes, tracks and sessions see (`Engine` in `seam.py`), over any core.

The front does what is the same wherever the model runs: the voice catalog,
the pronunciation dictionaries, and the checks before admission (text, SSML,
parameters, language identification, voice), synchronously, so a bad request
is refused before anything is sent. It then hands the request to its core
(`EngineCore`): `LocalCore` in this process, the gateway's `RemoteCore` for a
worker process. The core admits it (its queue, the first-audio budget) and
streams its audio. A request in several parts (SSML breaks, voice or rate
changes: `plan.py`) is submitted part by part (`PlanStream`). The front
imports nothing heavy: no model, no audio effects, no text normalization.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from media_server.config import Settings
from media_server.engine.catalog import VoiceCatalog
from media_server.engine.dictionaries import DictionaryStore
from media_server.engine.observer import EngineObserver
from media_server.engine.plan import Speech, plan
from media_server.engine.plan_stream import PlanStream
from media_server.engine.seam import AudioStream, EngineCore
from media_server.engine.types import EngineStats, Pcm, SynthesisRequest, Voice
from media_server.errors import NotReady
from media_server.text.langid import detect_language


class EngineFront:
    def __init__(self, core: EngineCore, settings: Settings) -> None:
        self._core = core
        self._catalog = VoiceCatalog(core.voices, settings.max_text_chars)
        self._max_text_chars = settings.max_text_chars
        self.dictionaries = DictionaryStore(settings)

    @property
    def backend_name(self) -> str:
        return self._core.backend_name

    @property
    def state(self) -> str:
        return self._core.state

    async def start(self) -> float | None:
        # fastText loads on first use: off the event loop now, not on the first "auto" request.
        await asyncio.to_thread(detect_language, "warm up")
        await asyncio.to_thread(self.dictionaries.load)
        return await self._core.start()

    async def stop(self) -> None:
        await self._core.stop()

    def observe(self, observer: EngineObserver) -> None:
        self._core.observe(observer)

    def health(self) -> bool:
        return self._core.health()

    def stats(self) -> EngineStats:
        return self._core.stats()

    def voices(self) -> Sequence[Voice]:
        return self._core.voices()

    def resolve_voice(self, voice_id: str | None, language: str | None = None) -> Voice:
        """The voice named `voice_id`, or the first that speaks `language`, or the default one."""
        self._require_voices()
        return self._catalog.resolve_voice(voice_id, language)

    def validate_text(self, text: str) -> None:
        self._catalog.validate_text(text)

    def stream(self, request: SynthesisRequest) -> AudioStream:
        """Check and admit `request`; raises MediaServerError subclasses on refusal."""
        self._require_voices()
        lexicon = self.dictionaries.lexicon(request.pronunciation_dictionaries)
        parts = plan(request, self._catalog, lexicon, self._max_text_chars)
        if len(parts) == 1 and isinstance(parts[0], Speech):
            return self._core.submit(parts[0].request, parts[0].voice, parts[0].language)
        return PlanStream(self._core, request, parts)

    async def create_voice(self, reference: Pcm, sample_rate: int, transcript: str | None, name: str) -> Voice:
        return await self._core.create_voice(reference, sample_rate, transcript, name)

    async def delete_voice(self, voice_id: str) -> None:
        await self._core.delete_voice(voice_id)

    def _require_voices(self) -> None:
        """Mark the core used (starting the model if it is not loaded); refuse until its voices were ever known.

        After an idle unload the voices are still known: requests are checked and
        wait in the core while the model comes back.
        """
        self._core.wake()
        if not self._core.voices():
            raise NotReady("the speech backend is loading; retry in a moment")
