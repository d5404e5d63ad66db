"""Talker prompts for one text segment, built the way the released Qwen3-TTS models were trained.

A prompt is a sequence of embeddings: optional instructions, the assistant
role, codec control tokens (language, speaker) overlaid on text control tokens,
then the text. With `text_in_prompt` the whole segment text is in the prompt
and the talker is fed padding while it speaks; otherwise the first text token
is in the prompt and the rest is fed one token per generated frame (the
`trailing` embeddings). A clone with a transcript also gets the reference's
text and codec frames in the prompt (in-context cloning).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

ASSISTANT_TEMPLATE = "<|im_start|>assistant\n{}<|im_end|>\n<|im_start|>assistant\n"
REFERENCE_TEMPLATE = "<|im_start|>assistant\n{}<|im_end|>\n"
INSTRUCT_TEMPLATE = "<|im_start|>user\n{}<|im_end|>\n"
ROLE_TOKENS = 3
"""`<|im_start|>`, `assistant`, newline."""
ASSISTANT_TAIL_TOKENS = 5
REFERENCE_TAIL_TOKENS = 2


@dataclass(frozen=True)
class ClonePrompt:
    """What voice cloning keeps of a reference: its x-vector and, for in-context cloning, its codes and text."""

    speaker_embedding: torch.Tensor
    reference_codes: torch.Tensor | None
    reference_text: str | None


@dataclass(frozen=True)
class Conditioning:
    """Everything about a sequence's voice that is the same for all its segments."""

    language_id: int | None
    speaker_embedding: torch.Tensor | None = None
    instructions: str | None = None
    clone: ClonePrompt | None = None
    text_in_prompt: bool = True


@dataclass(frozen=True)
class SegmentPrompt:
    embeds: torch.Tensor
    """Prompt positions x hidden."""
    trailing: torch.Tensor
    """Text embeddings fed with frames 0, 1, ...; padding after them."""


class PromptBuilder:
    """Tokenizes and embeds prompts with the model's own embedding tables."""

    def __init__(self, model: Any, tokenizer: Any) -> None:
        self._talker = model.talker
        self._config = model.config.talker_config
        self._tokenizer = tokenizer
        self._device: torch.device = next(self._talker.parameters()).device
        special = [
            model.config.tts_bos_token_id,
            model.config.tts_eos_token_id,
            model.config.tts_pad_token_id,
        ]
        self._text_bos, self._text_eos, self.pad = self._text(torch.tensor(special, device=self._device))
        self._role = self._text(self._ids(ASSISTANT_TEMPLATE.format(""))[:ROLE_TOKENS])

    def speaker(self, speaker_id: int) -> torch.Tensor:
        """The embedding of a built-in speaker (a codec token of the talker)."""
        return self._codec([speaker_id])[0]

    def text_ids(self, text: str) -> torch.Tensor:
        """The token ids of `text` as the talker reads it."""
        return self._ids(ASSISTANT_TEMPLATE.format(text))[ROLE_TOKENS:-ASSISTANT_TAIL_TOKENS]

    def build(self, text_ids: torch.Tensor, conditioning: Conditioning) -> SegmentPrompt:
        codec = self._codec_head(conditioning)
        head = torch.cat([self.pad.expand(len(codec) - 2, -1), self._text_bos[None]]) + codec[:-1]
        parts = [self._role, head]
        if conditioning.instructions:
            parts.insert(0, self._text(self._ids(INSTRUCT_TEMPLATE.format(conditioning.instructions))))
        clone = conditioning.clone
        if clone is not None and clone.reference_codes is not None and clone.reference_text:
            body, trailing = self._in_context(text_ids, clone, codec[-1:], conditioning.text_in_prompt)
        elif conditioning.text_in_prompt:
            text = torch.cat([self._text(text_ids), self._text_eos[None]])
            body = torch.cat([text + self._codec_pad(len(text)), self.pad[None] + codec[-1:]])
            trailing = self.pad[None]
        else:
            body = self._text(text_ids[:1]) + codec[-1:]
            trailing = torch.cat([self._text(text_ids[1:]), self._text_eos[None]])
        return SegmentPrompt(embeds=torch.cat([*parts, body]), trailing=trailing)

    def _codec_head(self, conditioning: Conditioning) -> torch.Tensor:
        """Codec control embeddings: think/language tags, the speaker, then pad and codec-BOS."""
        config = self._config
        if conditioning.language_id is None:
            tags = [config.codec_nothink_id, config.codec_think_bos_id, config.codec_think_eos_id]
        else:
            tags = [
                config.codec_think_id,
                config.codec_think_bos_id,
                conditioning.language_id,
                config.codec_think_eos_id,
            ]
        parts = [self._codec(tags)]
        if conditioning.speaker_embedding is not None:
            parts.append(conditioning.speaker_embedding.to(self._device, self.pad.dtype)[None])
        parts.append(self._codec([config.codec_pad_id, config.codec_bos_id]))
        return torch.cat(parts)

    def _in_context(
        self, text_ids: torch.Tensor, clone: ClonePrompt, codec_bos: torch.Tensor, text_in_prompt: bool
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The reference transcript + segment text over codec-BOS + the reference's frames."""
        assert clone.reference_codes is not None and clone.reference_text is not None
        reference_ids = self._ids(REFERENCE_TEMPLATE.format(clone.reference_text))
        ids = torch.cat([reference_ids[ROLE_TOKENS:-REFERENCE_TAIL_TOKENS], text_ids])
        text = torch.cat([self._text(ids), self._text_eos[None]])
        codec = torch.cat([codec_bos, self._frame_embeddings(clone.reference_codes.to(self._device))])
        if text_in_prompt:
            return torch.cat([text + self._codec_pad(len(text)), codec + self.pad]), self.pad[None]
        if len(text) > len(codec):
            return text[: len(codec)] + codec, text[len(codec) :]
        padded = torch.cat([text, self.pad.expand(len(codec) - len(text), -1)])
        return padded + codec, self.pad[None]

    def _frame_embeddings(self, codes: torch.Tensor) -> torch.Tensor:
        """The talker's input embedding of whole frames (frames x codebooks): the sum over codebooks."""
        tables = [self._talker.get_input_embeddings(), *self._talker.code_predictor.get_input_embeddings()]
        embedded: torch.Tensor = sum(table(codes[:, group]) for group, table in enumerate(tables))
        return embedded

    def _ids(self, text: str) -> torch.Tensor:
        ids = self._tokenizer(text, add_special_tokens=False)["input_ids"]
        return torch.tensor(ids, dtype=torch.long, device=self._device)

    def _text(self, ids: torch.Tensor) -> torch.Tensor:
        embedded: torch.Tensor = self._talker.text_projection(self._talker.get_text_embeddings()(ids))
        return embedded

    def _codec(self, ids: list[int]) -> torch.Tensor:
        embedded: torch.Tensor = self._talker.get_input_embeddings()(torch.tensor(ids, device=self._device))
        return embedded

    def _codec_pad(self, length: int) -> torch.Tensor:
        return self._codec([self._config.codec_pad_id] * length)
