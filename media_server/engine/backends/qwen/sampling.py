"""Batched token sampling for the Qwen3-TTS step loop: one row per batch slot, each with its own parameters.

Sampling is by inverse CDF: every row brings one uniform number drawn from its
own sequence's generator, so a sequence's tokens do not depend on which other
sequences share the batch, and the whole batch samples in a handful of kernels
(no per-row `multinomial` calls). Filtering follows the usual order: repetition
penalty, banned tokens, temperature, top-k, then top-p.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from media_server.engine.types import SamplingParams


@dataclass(frozen=True)
class SamplingDefaults:
    """The model's `generation_config.json` values, used where a request leaves a parameter unset."""

    temperature: float
    top_k: int
    top_p: float
    repetition_penalty: float
    sub_temperature: float
    sub_top_k: int
    sub_top_p: float

    @classmethod
    def from_generate_config(cls, config: dict[str, object]) -> SamplingDefaults:
        """Missing keys fall back to the values qwen_tts itself falls back to."""

        def number(key: str, default: float) -> float:
            value = config.get(key, default)
            return float(value) if isinstance(value, int | float) else default

        greedy = config.get("do_sample") is False
        sub_greedy = config.get("subtalker_dosample") is False
        return cls(
            temperature=0.0 if greedy else number("temperature", 0.9),
            top_k=int(number("top_k", 50)),
            top_p=number("top_p", 1.0),
            repetition_penalty=number("repetition_penalty", 1.05),
            sub_temperature=0.0 if sub_greedy else number("subtalker_temperature", 0.9),
            sub_top_k=int(number("subtalker_top_k", 50)),
            sub_top_p=number("subtalker_top_p", 1.0),
        )

    def talker(self, request: SamplingParams) -> tuple[float, int, float, float]:
        """Temperature, top-k, top-p and repetition penalty for a request's first codebook."""
        return (
            self.temperature if request.temperature is None else request.temperature,
            self.top_k if request.top_k is None else request.top_k,
            self.top_p if request.top_p is None else request.top_p,
            self.repetition_penalty if request.repetition_penalty is None else request.repetition_penalty,
        )


@dataclass(frozen=True)
class SamplingPlan:
    """What the rows' parameters ask of the sampler, known on the host: the steps it can leave out."""

    greedy: bool | None
    """True: every row takes the argmax; False: none does; None: some do."""
    top_k: frozenset[int]
    """The rows' distinct top-k values (0: no limit)."""
    top_p: bool
    """Some row keeps less than the whole probability mass."""


GENERAL = SamplingPlan(greedy=None, top_k=frozenset({0}), top_p=True)
"""Every step, whatever the parameters: one shape and one path, as CUDA graphs need."""


class SamplingRows(torch.nn.Module):
    """Per-slot sampling parameters as device tensors, written when a sequence takes its slot.

    A host copy of them makes the `plan`, so that a batch whose rows all sample the
    same way (the code predictor's always do) skips the filters nobody uses.
    With `static` (compiled into CUDA graphs) the plan is always `GENERAL`.
    """

    temperature: torch.Tensor
    top_k: torch.Tensor
    top_p: torch.Tensor
    repetition_penalty: torch.Tensor

    def __init__(self, slots: int, device: torch.device, static: bool = False) -> None:
        super().__init__()
        self._static = static
        self._host: list[tuple[float, int, float]] = [(1.0, 0, 1.0)] * slots
        self.plan = GENERAL
        self.register_buffer("temperature", torch.ones(slots, device=device))
        self.register_buffer("top_k", torch.zeros(slots, dtype=torch.long, device=device))
        self.register_buffer("top_p", torch.ones(slots, device=device))
        self.register_buffer("repetition_penalty", torch.ones(slots, device=device))

    def assign(
        self, slot: int | slice, temperature: float, top_k: int, top_p: float, repetition_penalty: float
    ) -> None:
        row = (max(temperature, 0.0), max(top_k, 0), min(max(top_p, 1e-6), 1.0))
        self.temperature[slot], self.top_k[slot], self.top_p[slot] = row
        self.repetition_penalty[slot] = max(repetition_penalty, 1e-6)
        for index in range(len(self._host))[slot] if isinstance(slot, slice) else [slot]:
            self._host[index] = row
        if not self._static:
            greedy = {temperature <= 0 for temperature, _, _ in self._host}
            self.plan = SamplingPlan(
                greedy=greedy.pop() if len(greedy) == 1 else None,
                top_k=frozenset(top_k for _, top_k, _ in self._host),
                top_p=any(top_p < 1.0 for _, _, top_p in self._host),
            )


def penalize_repeats(logits: torch.Tensor, seen: torch.Tensor, penalty: torch.Tensor) -> torch.Tensor:
    """Make tokens in `seen` (rows x vocab, bool) less likely by `penalty` (per row), as CTRL does."""
    factor = penalty[:, None]
    penalized = torch.where(logits < 0, logits * factor, logits / factor)
    return torch.where(seen, penalized, logits)


def sample(logits: torch.Tensor, uniform: torch.Tensor, rows: SamplingRows) -> torch.Tensor:
    """One token per row of `logits` (rows x vocab); a row with temperature 0 takes the argmax."""
    logits = logits.float()
    plan = rows.plan
    if plan.greedy:
        return logits.argmax(dim=-1)
    vocab = logits.shape[-1]
    greedy = rows.temperature <= 0
    temperature = rows.temperature if plan.greedy is False else torch.where(greedy, 1.0, rows.temperature)
    scaled = logits / temperature[:, None]
    if 0 not in plan.top_k and max(plan.top_k) < vocab:
        # Only the most likely `max(top_k)` tokens can be drawn: sorting them alone gives the same draw.
        ordered, order = scaled.topk(max(plan.top_k), dim=-1)
    else:
        ordered, order = scaled.sort(dim=-1, descending=True)
    candidates = ordered.shape[-1]
    if any(0 < top_k < candidates for top_k in plan.top_k):
        rank = torch.arange(candidates, device=logits.device)
        top_k = torch.where(rows.top_k > 0, rows.top_k, torch.full_like(rows.top_k, vocab))
        ordered = ordered.masked_fill(rank[None, :] >= top_k[:, None], float("-inf"))
    probs = ordered.softmax(dim=-1)
    if plan.top_p:
        # A row keeping the whole mass is left alone (rounding must not cut its tail): it samples
        # the same whether or not a neighbour's top-p brings this step into the batch.
        mass_before = probs.cumsum(dim=-1) - probs
        cut = (mass_before >= rows.top_p[:, None]) & (rows.top_p < 1.0)[:, None]
        probs = probs.masked_fill(cut, 0.0)
    cdf = probs.cumsum(dim=-1)
    target = (uniform * cdf[:, -1])[:, None]
    pick = torch.searchsorted(cdf, target).clamp(max=candidates - 1)
    sampled = order.gather(-1, pick).squeeze(-1)
    return sampled if plan.greedy is False else torch.where(greedy, logits.argmax(dim=-1), sampled)
