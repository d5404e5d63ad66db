"""The voices a Qwen3-TTS checkpoint offers, and the languages it speaks.

A CustomVoice checkpoint has named speakers; a VoiceDesign checkpoint makes a
voice from the request's instructions (one `designed` voice); a Base checkpoint
speaks without a speaker (`default`) and clones voices (see `clones.py`).
Languages come from the checkpoint's `codec_language_id` table; requests may
name them (`english`) or give ISO 639-1 codes (`en`, `en-US`); `auto` lets the
model decide.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from media_server.engine.backends.qwen.prompt import ClonePrompt, Conditioning, PromptBuilder
from media_server.engine.types import SynthesisRequest, Voice
from media_server.errors import InvalidRequest

BACKEND = "qwen"
AUTO = "auto"
ISO_CODES = {
    "chinese": "zh",
    "english": "en",
    "german": "de",
    "italian": "it",
    "portuguese": "pt",
    "spanish": "es",
    "japanese": "ja",
    "korean": "ko",
    "french": "fr",
    "russian": "ru",
}
DESIGNED_VOICE = "designed"
DEFAULT_VOICE = "default"
DEFAULT_DESCRIPTION = "A clear, natural and friendly voice at a moderate pace."
"""What a VoiceDesign checkpoint is told when a request gives no instructions."""


@dataclass(frozen=True)
class VoiceSpec:
    """A listed voice and how the talker is conditioned to speak with it."""

    voice: Voice
    speaker: str | None = None
    designed: bool = False
    clone: ClonePrompt | None = None


class QwenVoices:
    """Built-in voices and language resolution for one loaded checkpoint."""

    def __init__(self, model: Any, sample_rate: int) -> None:
        talker = model.config.talker_config
        self.kind: str = model.tts_model_type
        self.sample_rate = sample_rate
        self._takes_instructions = model.tts_model_size != "0b6"
        self._language_ids: dict[str, int] = {str(k).lower(): int(v) for k, v in talker.codec_language_id.items()}
        self._dialects: dict[str, str | bool] = {str(k).lower(): v for k, v in (talker.spk_is_dialect or {}).items()}
        names = [name for name in self._language_ids if "dialect" not in name]
        self._aliases = {name: name for name in names} | {ISO_CODES[n]: n for n in names if n in ISO_CODES}
        self.languages = tuple(ISO_CODES.get(name, name) for name in names)
        self._speaker_ids: dict[str, int] = {str(k).lower(): int(v) for k, v in (talker.spk_id or {}).items()}

    def builtin(self) -> list[VoiceSpec]:
        if self.kind == "custom_voice":
            return [
                VoiceSpec(self.voice(name, name.replace("_", " ").title()), speaker=name)
                for name in sorted(self._speaker_ids)
            ]
        if self.kind == "voice_design":
            return [VoiceSpec(self.voice(DESIGNED_VOICE, "Designed from instructions"), designed=True)]
        return [VoiceSpec(self.voice(DEFAULT_VOICE, "Default (no reference)"))]

    def voice(self, voice_id: str, name: str) -> Voice:
        return Voice(
            id=voice_id,
            name=f"{name} (Qwen3-TTS)",
            backend=BACKEND,
            languages=self.languages,
            sample_rate=self.sample_rate,
        )

    def language_id(self, language: str, speaker: str | None) -> int | None:
        """The codec language tag for a request's `language`, or None to let the model decide."""
        wanted = language.strip().lower()
        name = None if wanted in ("", AUTO) else self._aliases.get(wanted) or self._aliases.get(wanted.split("-")[0])
        if wanted not in ("", AUTO) and name is None:
            known = ", ".join((AUTO, *self.languages))
            raise InvalidRequest(f"language: {language!r} is not supported by this model; use one of {known}")
        dialect = self._dialects.get(speaker or "")
        if isinstance(dialect, str) and name in (None, "chinese") and dialect in self._language_ids:
            return self._language_ids[dialect]
        return None if name is None else self._language_ids[name]

    def conditioning(self, spec: VoiceSpec, request: SynthesisRequest, prompts: PromptBuilder) -> Conditioning:
        """How the talker is told to speak `request` with this voice.

        Instructions describe the voice of a VoiceDesign checkpoint, steer the style of a
        (1.7B) CustomVoice speaker, and are ignored otherwise. Base checkpoints are fed the
        text as they speak (their released default); the others get each segment's text up front.
        """
        instructions = request.instructions
        if spec.designed:
            instructions = instructions or DEFAULT_DESCRIPTION
        elif spec.speaker is None or not self._takes_instructions:
            instructions = None
        if spec.clone is not None:
            speaker = spec.clone.speaker_embedding
        elif spec.speaker is not None:
            speaker = prompts.speaker(self._speaker_ids[spec.speaker])
        else:
            speaker = None
        return Conditioning(
            language_id=self.language_id(request.language, spec.speaker),
            speaker_embedding=speaker,
            instructions=instructions,
            clone=spec.clone,
            text_in_prompt=self.kind != "base",
        )
