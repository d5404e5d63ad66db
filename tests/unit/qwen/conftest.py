"""Tiny random-weight Qwen3-TTS checkpoints (built once per session) and backends loaded from them.

Nothing here imports torch or qwen_tts at module level: without the `qwen` extra,
the test modules skip themselves (`pytest.importorskip`) and this file must still load.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from media_server.config import Settings

if TYPE_CHECKING:
    from media_server.engine.backends.qwen.backend import QwenBackend
    from media_server.engine.backends.qwen.sequence import QwenSequence
    from media_server.engine.types import Pcm
    from tests.qwen_checkpoint import ModelKind

    BackendFactory = Callable[..., QwenBackend]
    Speaker = Callable[[QwenBackend, list[QwenSequence]], list[list[Pcm]]]


@pytest.fixture(scope="session", autouse=True)
def one_torch_thread() -> Iterator[None]:
    """The tiny model's ops are far too small to share out; two threads only contend (10x slower here)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _checkpoint(factory: pytest.TempPathFactory, kind: ModelKind, codebook_size: int) -> Path:
    from tests.qwen_checkpoint import build_checkpoint

    return build_checkpoint(factory.mktemp(kind), kind, codebook_size=codebook_size)


@pytest.fixture(scope="session")
def custom_voice_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Speakers, and a codebook large enough that utterances run to their frame budget."""
    return _checkpoint(tmp_path_factory, "custom_voice", codebook_size=1024)


@pytest.fixture(scope="session")
def base_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Voice cloning, and a codebook so small that end-of-speech comes within a few frames."""
    return _checkpoint(tmp_path_factory, "base", codebook_size=8)


@pytest.fixture(scope="session")
def voice_design_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _checkpoint(tmp_path_factory, "voice_design", codebook_size=8)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(
        tts_backend="qwen",
        qwen_device="cpu",
        qwen_max_batch=4,
        qwen_warmup=False,
        voice_cache_dir=str(tmp_path / "voices"),
    )


@pytest.fixture
def make_backend(settings: Settings) -> BackendFactory:
    """Loads a backend from a checkpoint directory, with `Settings` overrides."""
    from media_server.engine.backends.qwen.backend import QwenBackend

    def make(model: Path, **overrides: Any) -> QwenBackend:
        backend = QwenBackend(replace(settings, qwen_model=str(model), **overrides))
        backend.load()
        return backend

    return make


@pytest.fixture
def backend(make_backend: BackendFactory, custom_voice_model: Path) -> QwenBackend:
    return make_backend(custom_voice_model)


@pytest.fixture
def speak() -> Speaker:
    """Steps `sequences` together until each is done; returns every step's audio per sequence, then closes them."""

    def run(backend: QwenBackend, sequences: list[QwenSequence]) -> list[list[Pcm]]:
        steps: list[list[Pcm]] = [[] for _ in sequences]
        pending = list(range(len(sequences)))
        while pending:
            results = backend.step([sequences[i] for i in pending])
            for i, pcm in zip(list(pending), results, strict=True):
                if pcm is None:
                    pending.remove(i)
                else:
                    steps[i].append(pcm)
        for sequence in sequences:
            backend.close(sequence)
        return steps

    return run
