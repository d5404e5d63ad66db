"""Slot-indexed static KV caches that the model's own attention layers write into.

Every slot (one open sequence) owns a row of fixed-size K/V buffers allocated
once. A `CacheView` is what the model's attention modules see as their
`past_key_values` for one forward: it writes the new keys and values at each
row's own positions and hands back the rows' caches up to the attention length.
"""

from __future__ import annotations

import torch


def additive_mask(allowed: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """A boolean attention mask as the additive form both eager and SDPA attention accept."""
    return torch.zeros(allowed.shape, dtype=dtype, device=allowed.device).masked_fill(~allowed, float("-inf"))


class SlotCache(torch.nn.Module):
    """K/V buffers for every slot and layer, allocated once."""

    all_rows: torch.Tensor
    """Every slot's row index (slots x 1), for writes to all rows at once."""

    def __init__(
        self,
        layers: int,
        slots: int,
        heads: int,
        length: int,
        head_dim: int,
        dtype: torch.dtype,
        device: torch.device,
    ) -> None:
        super().__init__()
        self.keys: list[torch.Tensor] = []
        self.values: list[torch.Tensor] = []
        self.register_buffer("all_rows", torch.arange(slots, device=device)[:, None])
        for layer in range(layers):
            for name, buffers in (("key", self.keys), ("value", self.values)):
                buffer = torch.zeros(slots, heads, length, head_dim, dtype=dtype, device=device)
                self.register_buffer(f"{name}_{layer}", buffer)
                buffers.append(buffer)


class CacheView:
    """What the model's attention layers see as `past_key_values`: writes at each row's positions."""

    def __init__(self, cache: SlotCache, rows: torch.Tensor | None, positions: torch.Tensor, length: int) -> None:
        self._cache = cache
        self._rows = rows
        self._write_rows = cache.all_rows if rows is None else rows[:, None]
        self._positions = positions
        self._length = length

    def update(
        self, key: torch.Tensor, value: torch.Tensor, layer_idx: int, cache_kwargs: object = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        keys, values = self._cache.keys[layer_idx], self._cache.values[layer_idx]
        keys[self._write_rows, :, self._positions] = key.transpose(1, 2)
        values[self._write_rows, :, self._positions] = value.transpose(1, 2)
        if self._rows is None:
            return keys[:, :, : self._length], values[:, :, : self._length]
        return keys[self._rows, :, : self._length], values[self._rows, :, : self._length]
