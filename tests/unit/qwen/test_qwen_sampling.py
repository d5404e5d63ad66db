"""The batched sampler: inverse-CDF draws, per-row temperature, top-k and top-p, and the repetition penalty."""

from __future__ import annotations

import pytest

pytest.importorskip("qwen_tts")

import torch

from media_server.engine.backends.qwen.sampling import SamplingRows, penalize_repeats, sample

PROBABILITIES = torch.tensor([0.2, 0.5, 0.3])
LOGITS = PROBABILITIES.log()


def _rows(*params: tuple[float, int, float]) -> SamplingRows:
    rows = SamplingRows(len(params), torch.device("cpu"))
    for slot, (temperature, top_k, top_p) in enumerate(params):
        rows.assign(slot, temperature, top_k, top_p, repetition_penalty=1.0)
    return rows


@pytest.mark.parametrize(("uniform", "token"), [(0.1, 1), (0.6, 2), (0.9, 0)])
def test_a_uniform_draw_picks_by_the_cumulative_distribution(uniform: float, token: int) -> None:
    picked = sample(LOGITS[None], torch.tensor([uniform]), _rows((1.0, 0, 1.0)))
    assert picked.tolist() == [token]


def test_each_row_keeps_its_own_parameters() -> None:
    rows = _rows((0.0, 0, 1.0), (1.0, 1, 1.0), (1.0, 2, 1.0), (1.0, 0, 0.4), (1.0, 0, 1.0))
    picked = sample(LOGITS.expand(5, -1), torch.full((5,), 0.95), rows)
    assert picked.tolist() == [1, 1, 2, 1, 0]


def test_a_high_temperature_flattens_the_distribution() -> None:
    uniform = torch.linspace(0.0, 0.999, 1000)
    cool = sample(LOGITS.expand(1000, -1), uniform, _rows(*[(0.5, 0, 1.0)] * 1000))
    hot = sample(LOGITS.expand(1000, -1), uniform, _rows(*[(5.0, 0, 1.0)] * 1000))
    assert (cool == 1).sum() > 600 > (hot == 1).sum() > 333


def test_the_repetition_penalty_lowers_only_seen_tokens() -> None:
    logits = torch.tensor([[2.0, -2.0, 2.0, -2.0]])
    seen = torch.tensor([[True, True, False, False]])
    penalized = penalize_repeats(logits, seen, torch.tensor([2.0]))
    assert penalized.tolist() == [[1.0, -4.0, 2.0, -2.0]]
