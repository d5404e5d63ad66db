"""Streaming decode of 12.5 Hz codec frames into 24 kHz PCM: the 12 Hz decoder run with carried state.

The speech tokenizer's decoder is causal: left-padded convolutions, transposed
convolutions trimmed on the right, and a causal sliding-window transformer.
Re-decoding a window of recent frames with some left context (what the
upstream one-shot decode does for long inputs) only approximates decoding
everything, because the transformer's receptive field is its layers times its
72-frame window (8 layers of 72 by the codec config's defaults). On the two-layer test
codec, 25 frames of left context missed by up to 1627 int16 steps (mean 66),
72 frames by up to 354, and only 150 frames matched. So each slot carries the
decoder's state instead: the last input samples of every convolution (what
its zero padding stands for at a stream's start) and a ring of the
transformer's recent keys and values. Decoding new frames with that state
gives the samples of decoding the whole stream at once, up to float rounding,
at a cost proportional to the new frames only.

Sequences emitting the same number of frames in a step are decoded in one
batch; their state rows are gathered and written back.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import torch
from qwen_tts.core.tokenizer_12hz.modeling_qwen3_tts_tokenizer_v2 import (
    Qwen3TTSTokenizerV2CausalConvNet as CausalConv,
)
from qwen_tts.core.tokenizer_12hz.modeling_qwen3_tts_tokenizer_v2 import (
    Qwen3TTSTokenizerV2CausalTransConvNet as CausalTransposedConv,
)
from qwen_tts.core.tokenizer_12hz.modeling_qwen3_tts_tokenizer_v2 import (
    Qwen3TTSTokenizerV2ConvNeXtBlock as ConvNeXtBlock,
)
from qwen_tts.core.tokenizer_12hz.modeling_qwen3_tts_tokenizer_v2 import (
    Qwen3TTSTokenizerV2DecoderDecoderBlock as UpsampleBlock,
)
from qwen_tts.core.tokenizer_12hz.modeling_qwen3_tts_tokenizer_v2 import (
    Qwen3TTSTokenizerV2DecoderDecoderResidualUnit as ResidualUnit,
)

from media_server.config import QWEN_MAX_CHUNK_FRAMES
from media_server.engine.backends.qwen.cache import CacheView, SlotCache, additive_mask
from media_server.engine.types import Pcm

MAX_CALL_FRAMES = QWEN_MAX_CHUNK_FRAMES
"""The most frames one decode call takes per sequence (longer inputs are fed in pieces)."""
_NEVER = -(1 << 40)
"""The position of an empty ring entry: outside every attention window."""

Codes = npt.NDArray[np.int64]
"""Frames x codebooks."""


@dataclass(frozen=True)
class CodecInput:
    slot: int
    codes: Codes


class StreamingCodec:
    """Per-slot decoder state, and the decode of new frames with it."""

    def __init__(self, speech_tokenizer: Any, slots: int) -> None:
        model = speech_tokenizer.model
        self._decoder = model.decoder
        self.sample_rate: int = int(model.get_output_sample_rate())
        parameter = next(model.parameters())
        self._device, dtype = parameter.device, parameter.dtype
        transformer = self._decoder.pre_transformer
        config = transformer.config
        self._window: int = config.sliding_window
        self._ring = self._window + MAX_CALL_FRAMES
        self._cache = SlotCache(
            config.num_hidden_layers,
            slots,
            config.num_key_value_heads,
            self._ring,
            getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads,
            dtype,
            self._device,
        )
        self._key_positions = torch.full((slots, self._ring), _NEVER, dtype=torch.long, device=self._device)
        self._frames = [0] * slots
        self._tails: dict[str, torch.Tensor] = {}
        for name, module in self._decoder.named_modules():
            history = _history(module)
            if history:
                shape = (slots, module.conv.in_channels, history)
                self._tails[name] = torch.zeros(shape, dtype=dtype, device=self._device)
        self._names = {module: name for name, module in self._decoder.named_modules() if name in self._tails}

    def reset(self, slot: int) -> None:
        """Forget the slot's past: the next frames decode as the start of a stream."""
        self._frames[slot] = 0
        self._key_positions[slot] = _NEVER
        for tail in self._tails.values():
            tail[slot] = 0

    def decode(self, inputs: list[CodecInput]) -> list[Pcm]:
        """The PCM of each input's frames (at most one input per slot), continuing its slot's stream."""
        pieces = [
            [
                CodecInput(item.slot, item.codes[start : start + MAX_CALL_FRAMES])
                for start in range(0, len(item.codes), MAX_CALL_FRAMES)
            ]
            for item in inputs
        ]
        audio: list[list[Pcm]] = [[] for _ in inputs]
        for turn in range(max((len(split) for split in pieces), default=0)):
            groups: dict[int, list[int]] = defaultdict(list)
            for index, split in enumerate(pieces):
                if turn < len(split):
                    groups[len(split[turn].codes)].append(index)
            for members in groups.values():
                decoded = self._decode_batch([pieces[index][turn] for index in members])
                for index, pcm in zip(members, decoded, strict=True):
                    audio[index].append(pcm)
        return [np.concatenate(parts) if parts else np.empty(0, dtype=np.int16) for parts in audio]

    def _decode_batch(self, pieces: list[CodecInput]) -> list[Pcm]:
        """Frames of equal count for distinct slots, in one forward."""
        slots = [piece.slot for piece in pieces]
        rows = torch.tensor(slots, device=self._device)
        # Consecutive slots (one stream, or streams that started together) are a view, not a gather.
        index: torch.Tensor | slice = rows
        if slots == list(range(slots[0], slots[-1] + 1)):
            index = slice(slots[0], slots[-1] + 1)
        batch = _Batch(rows, {name: tail[index] for name, tail in self._tails.items()})
        codes = torch.from_numpy(np.stack([piece.codes for piece in pieces])).to(self._device).transpose(1, 2)
        starts = torch.tensor([self._frames[slot] for slot in slots], device=self._device)
        with torch.inference_mode():
            hidden = self._decoder.quantizer.decode(codes)
            hidden = self._run(self._decoder.pre_conv, hidden, batch).transpose(1, 2)
            hidden = self._transformer(hidden, starts, batch).permute(0, 2, 1)
            for blocks in self._decoder.upsample:
                for block in blocks:
                    hidden = self._run(block, hidden, batch)
            for block in self._decoder.decoder:
                hidden = self._run(block, hidden, batch)
            audio = hidden.clamp(min=-1, max=1)[:, 0].float()
        for name, tail in batch.tails.items():
            self._tails[name][index] = tail
        for slot in slots:
            self._frames[slot] += codes.shape[-1]
        pcm = (audio * 32767.0).round().to(torch.int16).cpu().numpy()
        return list(pcm)

    def _run(self, module: Any, hidden: torch.Tensor, batch: _Batch) -> torch.Tensor:
        """`module(hidden)`, with every convolution inside continuing from its stored input tail."""
        if isinstance(module, CausalConv | CausalTransposedConv):
            return self._convolve(module, hidden, batch)
        if isinstance(module, ResidualUnit):
            out = self._run(module.conv1, module.act1(hidden), batch)
            return self._run(module.conv2, module.act2(out), batch) + hidden
        if isinstance(module, ConvNeXtBlock):
            out = self._run(module.dwconv, hidden, batch).permute(0, 2, 1)
            scaled: torch.Tensor = module.gamma * module.pwconv2(module.act(module.pwconv1(module.norm(out))))
            return hidden + scaled.permute(0, 2, 1)
        if isinstance(module, UpsampleBlock):
            for part in module.block:
                hidden = self._run(part, hidden, batch)
            return hidden
        result: torch.Tensor = module(hidden)
        return result

    def _convolve(self, module: Any, hidden: torch.Tensor, batch: _Batch) -> torch.Tensor:
        name = self._names.get(module)
        if name is None:
            result: torch.Tensor = module(hidden)
            return result
        tail = batch.tails[name]
        extended = torch.cat([tail, hidden], dim=-1)
        batch.tails[name] = extended[..., -tail.shape[-1] :]
        out: torch.Tensor = module.conv(extended)
        if isinstance(module, CausalConv):
            return out
        # A transposed convolution's first outputs for the tail were returned by the previous call.
        stride = module.conv.stride[0]
        return out[..., tail.shape[-1] * stride : (tail.shape[-1] + hidden.shape[-1]) * stride]

    def _transformer(self, hidden: torch.Tensor, starts: torch.Tensor, batch: _Batch) -> torch.Tensor:
        """The sliding-window transformer over new frames, attending to the slot's ring of past keys."""
        transformer = self._decoder.pre_transformer
        hidden = transformer.input_proj(hidden)
        positions = starts[:, None] + torch.arange(hidden.shape[1], device=self._device)
        ring_index = positions % self._ring
        key_positions = self._key_positions[batch.rows]
        key_positions[torch.arange(len(key_positions), device=self._device)[:, None], ring_index] = positions
        self._key_positions[batch.rows] = key_positions
        query = positions[:, None, :, None]
        known = key_positions[:, None, None, :]
        mask = additive_mask((known <= query) & (known > query - self._window), hidden.dtype)
        view = CacheView(self._cache, batch.rows, ring_index, self._ring)
        embeddings = transformer.rotary_emb(hidden, positions)
        for layer in transformer.layers:
            hidden = layer(hidden, attention_mask=mask, past_key_values=view, position_embeddings=embeddings)
        out: torch.Tensor = transformer.output_proj(transformer.norm(hidden))
        return out


@dataclass
class _Batch:
    """The slots of one decode call and their convolution tails, updated as the call runs."""

    rows: torch.Tensor
    tails: dict[str, torch.Tensor]


def _history(module: Any) -> int:
    """Input samples a causal (transposed) convolution needs from before the new input; 0 if none."""
    if isinstance(module, CausalConv):
        if module.conv.stride[0] != 1:
            raise ValueError("streaming decode supports only stride-1 causal convolutions")
        return int(module.padding)
    if isinstance(module, CausalTransposedConv):
        return -(-int(module.right_pad) // int(module.conv.stride[0]))
    return 0
