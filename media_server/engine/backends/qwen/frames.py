"""The Qwen3-TTS step loop: one codec frame for every batch slot per call, over slot-indexed static KV caches.

The talker (an autoregressive transformer over 12.5 Hz codec frames) predicts
each frame's first codebook; the code predictor (a small transformer run
afresh for every frame) predicts the remaining codebooks from the talker's
hidden state. Both run through the model's own decoder layers; only the KV
cache and the attention masks are ours.

Why a slot-indexed static cache: every open sequence owns one row (slot) of
fixed-size K/V buffers allocated at load (`slots x kv_heads x max_len x
head_dim` per layer). A decode step always runs all slots with a per-row
position and a per-row causal mask, and writes only where each row stands; a
slot that is not stepped (free, or skipped by the scheduler this turn) writes
at its own next position, which its next real step overwrites before it is
read, and its carried state (last hidden state and logits) is kept by a mask.
So sequences join, leave and skip steps without moving any cache, shapes never
change (batch = slots), and a row's arithmetic never depends on its neighbours'
data: the prerequisites for CUDA graphs, and for the same seed giving the same
codes alone or batched. Gathering per-sequence dynamic caches would instead
copy every sequence's whole cache at every step.

The attention length is the furthest position of any slot rounded up to
`KV_BLOCK`, so the compiled decode sees a handful of shapes. New prompts are
prefilled together, a chunk of at most `QWEN_PREFILL_CHUNK` tokens per step
(right-padded; the padding's cache rows are overwritten before they are ever
attended to), so a long prompt (a cloned voice's reference) never stalls the
other slots' frames for longer than one chunk.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from media_server.engine.backends.qwen.cache import CacheView, SlotCache, additive_mask
from media_server.engine.backends.qwen.sampling import (
    SamplingDefaults,
    SamplingRows,
    penalize_repeats,
    sample,
)
from media_server.engine.types import SamplingParams

KV_BLOCK = 256
"""Attention lengths are rounded up to a multiple of this many positions (few compiled shapes)."""
CONTROL_TOKENS = 1024


@dataclass(frozen=True)
class _Attention:
    """Where a forward's tokens stand and what they may attend to: the same for every layer of a stack."""

    positions: torch.Tensor
    """Rows x tokens."""
    length: int
    mask: torch.Tensor
    position_embeddings: tuple[torch.Tensor, torch.Tensor]


def _attention(stack: Any, like: torch.Tensor, positions: torch.Tensor, length: int, mrope: bool) -> _Attention:
    """Causal masks and rotary embeddings for tokens at `positions` over a cache `length` long."""
    keys = torch.arange(length, device=like.device)
    mask = additive_mask(keys[None, None, None, :] <= positions[:, None, :, None], like.dtype)
    rope_positions = positions[None].expand(3, -1, -1) if mrope else positions
    return _Attention(positions, length, mask, stack.rotary_emb(like, rope_positions))


def _run_layers(
    stack: Any, cache: SlotCache, inputs: torch.Tensor, attention: _Attention, rows: torch.Tensor | None
) -> torch.Tensor:
    """The decoder stack over `inputs` (rows x tokens x hidden) as `attention` places them."""
    view = CacheView(cache, rows, attention.positions, attention.length)
    hidden = inputs
    for layer in stack.layers:
        hidden = layer(
            hidden,
            attention_mask=attention.mask,
            past_key_values=view,
            position_embeddings=attention.position_embeddings,
        )[0]
    normed: torch.Tensor = stack.norm(hidden)
    return normed


class FrameEngine(torch.nn.Module):
    """Batched talker + code predictor state for `slots` sequences (`static`: shapes fixed for CUDA graphs)."""

    talker: Any
    banned: torch.Tensor
    is_eos: torch.Tensor
    slot_index: torch.Tensor
    hidden: torch.Tensor
    """Each slot's last talker output (the code predictor's first input)."""
    logits: torch.Tensor
    """Each slot's next first-codebook logits."""
    seen: torch.Tensor
    """First-codebook tokens each slot has produced in its segment (for the repetition penalty)."""

    def __init__(self, talker: Any, slots: int, max_len: int, defaults: SamplingDefaults, static: bool = False) -> None:
        super().__init__()
        config = talker.config
        predictor_config = config.code_predictor_config
        parameter = next(talker.parameters())
        device, dtype = parameter.device, parameter.dtype
        self.talker = talker
        self.slots = slots
        self.max_len = max_len
        self.groups: int = config.num_code_groups
        self.eos: int = config.codec_eos_token_id
        vocab: int = config.vocab_size
        self.talker_cache = SlotCache(
            config.num_hidden_layers,
            slots,
            config.num_key_value_heads,
            max_len,
            _head_dim(config),
            dtype,
            device,
        )
        self.predictor_cache = SlotCache(
            predictor_config.num_hidden_layers,
            slots,
            predictor_config.num_key_value_heads,
            self.groups,
            _head_dim(predictor_config),
            dtype,
            device,
        )
        self.rows = SamplingRows(slots, device, static)
        self.rows.assign(slice(None), *defaults.talker(SamplingParams()))
        self.sub_rows = SamplingRows(slots, device, static)
        self.sub_rows.assign(slice(None), defaults.sub_temperature, defaults.sub_top_k, defaults.sub_top_p, 1.0)
        self.register_buffer("slot_index", torch.arange(slots, device=device))
        # The code predictor restarts every frame at the same positions: the hidden state and the
        # first code at 0 and 1, code g at g. Its masks and rotary embeddings are made once.
        like = torch.zeros(1, dtype=dtype, device=device)
        self._predictor_attention = [
            _attention(
                talker.code_predictor.model,
                like,
                torch.arange(group + 1 - (2 if group == 1 else 1), group + 1, device=device).expand(slots, -1),
                self.groups,
                mrope=False,
            )
            for group in range(1, self.groups)
        ]
        # The top 1024 ids are control tokens the talker must never emit, except end-of-speech.
        banned = torch.zeros(vocab, dtype=torch.bool, device=device)
        banned[vocab - CONTROL_TOKENS :] = True
        banned[self.eos] = False
        is_eos = torch.zeros(vocab, dtype=torch.bool, device=device)
        is_eos[self.eos] = True
        self.register_buffer("banned", banned)
        self.register_buffer("is_eos", is_eos)
        self.register_buffer("hidden", torch.zeros(slots, config.hidden_size, dtype=dtype, device=device))
        self.register_buffer("logits", torch.zeros(slots, vocab, dtype=torch.float32, device=device))
        self.register_buffer("seen", torch.zeros(slots, vocab, dtype=torch.bool, device=device))

    @property
    def device(self) -> torch.device:
        return self.hidden.device

    def attention_length(self, furthest: int) -> int:
        """The attention length for a step whose furthest row writes at position `furthest`."""
        return min(-(-(furthest + 1) // KV_BLOCK) * KV_BLOCK, self.max_len)

    def attention_lengths(self) -> list[int]:
        """Every attention length a decode step may use (what warm-up compiles)."""
        return sorted({self.attention_length(end) for end in range(0, self.max_len, KV_BLOCK)})

    def prefill(self, slots: list[int], chunks: list[torch.Tensor], offsets: list[int], finishing: list[bool]) -> None:
        """Run each prompt chunk (tokens x hidden) into its slot's cache from position `offsets[i]`.

        A slot whose chunk ends its prompt (`finishing`) takes the last hidden state and
        logits: its first frame comes next. Chunks are right-padded to one length; a
        padding token writes at a position past its row's chunk, which that row's next
        chunk or frame overwrites before it is ever attended to.
        """
        lengths = torch.tensor([len(chunk) for chunk in chunks], device=self.device)
        inputs = torch.nn.utils.rnn.pad_sequence(chunks, batch_first=True)
        rows = torch.tensor(slots, device=self.device)
        start = torch.tensor(offsets, device=self.device)
        # Made before the forward is queued: a host-to-device copy waits for the work already queued.
        done = torch.tensor([i for i, last in enumerate(finishing) if last], dtype=torch.long, device=self.device)
        positions = (start[:, None] + torch.arange(inputs.shape[1], device=self.device)[None, :]).clamp(
            max=self.max_len - 1
        )
        length = min(self.max_len, max(offset + len(chunk) for offset, chunk in zip(offsets, chunks, strict=True)))
        length = max(length, int(positions.max()) + 1)
        attention = _attention(self.talker.model, inputs, positions, length, mrope=True)
        hidden = _run_layers(self.talker.model, self.talker_cache, inputs, attention, rows)
        if len(done):
            last_hidden = hidden[done, lengths[done] - 1]
            finished_rows = rows[done]
            self.hidden[finished_rows] = last_hidden
            self.logits[finished_rows] = self.talker.codec_head(last_hidden).float()
            self.seen[finished_rows] = False

    def sample_frame(
        self, uniform: torch.Tensor, active: torch.Tensor, eos_allowed: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Every slot's next frame (slots x groups codes) and the sum of its code embeddings.

        `uniform` (slots x groups) drives the sampling; `active` rows record their first
        code for the repetition penalty; EOS may only be drawn where `eos_allowed`.
        """
        logits = penalize_repeats(self.logits, self.seen, self.rows.repetition_penalty)
        banned = self.banned[None, :] | (self.is_eos[None, :] & ~eos_allowed[:, None])
        logits = logits.masked_fill(banned, float("-inf"))
        first = sample(logits, uniform[:, 0], self.rows)
        self.seen[self.slot_index, first] |= active

        predictor = self.talker.code_predictor
        embedding = self.talker.model.codec_embedding(first)
        total = embedding
        inputs = torch.stack([self.hidden, embedding], dim=1)
        codes = [first]
        for group, attention in enumerate(self._predictor_attention, start=1):
            projected = predictor.small_to_mtp_projection(inputs)
            hidden = _run_layers(predictor.model, self.predictor_cache, projected, attention, None)
            code = sample(predictor.lm_head[group - 1](hidden[:, -1]), uniform[:, group], self.sub_rows)
            codes.append(code)
            embedding = predictor.model.codec_embedding[group - 1](code)
            total = total + embedding
            inputs = embedding[:, None]
        return torch.stack(codes, dim=1), total

    def decode(self, inputs: torch.Tensor, positions: torch.Tensor, active: torch.Tensor, length: int) -> None:
        """Feed one input embedding per slot at `positions`; `active` slots keep the new hidden state and logits."""
        inputs = inputs[:, None]
        attention = _attention(self.talker.model, inputs, positions[:, None], length, mrope=True)
        hidden = _run_layers(self.talker.model, self.talker_cache, inputs, attention, None)[:, -1]
        keep = active[:, None]
        self.hidden.copy_(torch.where(keep, hidden, self.hidden))
        self.logits.copy_(torch.where(keep, self.talker.codec_head(hidden).float(), self.logits))


def _head_dim(config: Any) -> int:
    head_dim: int = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
    return head_dim
