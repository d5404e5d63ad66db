"""Random-weight Qwen3-TTS checkpoints on disk, of any size, loadable by the real `from_pretrained` path.

`write_random_weights` instantiates `Qwen3TTSForConditionalGeneration` and the
12 Hz speech tokenizer from their config values with random weights and saves
them as a release lays them out (`config.json` + safetensors, `speech_tokenizer/`).
The tests' tiny checkpoints (`tests/qwen_checkpoint.py`) and the benchmark's
real-size ones (`build_released`, from the released configuration files in
`shared/qwen3-tts/<model>/`, with the real text tokenizer) are both written by it.

Random weights are as transformers initializes them (normal, std 0.02), except
the codec decoder's, which are rescaled so that codes decode to audible noise
rather than to silence (the server trims silence, and an all-silent decoder
would make every comparison of decoded audio vacuous). Random weights rarely
emit end-of-speech and never stop on meaning: benchmarks give each stream a
fixed frame count.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path
from typing import Any

import torch
from qwen_tts.core import Qwen3TTSTokenizerV2Config, Qwen3TTSTokenizerV2Model
from qwen_tts.core.models import Qwen3TTSConfig, Qwen3TTSForConditionalGeneration

SEED = 1234
OUTPUT_GAIN = 0.015
"""Brings the random decoder's output (RMS about 15) down to about -12 dBFS, clear of clipping."""
WEIGHTS = "model.safetensors"
RELEASE_FILES = ("config.json", "generation_config.json", "preprocessor_config.json", "tokenizer_config.json")
CODEC_FILES = ("config.json", "preprocessor_config.json")
TEXT_TOKENIZER_FILES = ("vocab.json", "merges.txt")


def write_random_weights(
    path: Path,
    model_values: dict[str, Any],
    codec_values: dict[str, Any],
    silent: bool = False,
    dtype: torch.dtype = torch.float32,
) -> None:
    """Random weights for `model_values` (Qwen3TTSConfig) and `codec_values` (the speech tokenizer's), saved.

    The talker and its encoders are saved in `dtype` (the releases use bfloat16); the
    codec in float32. `silent` leaves the codec decoder as transformers initializes it
    (it decodes every code to silence).
    """
    path.mkdir(parents=True, exist_ok=True)
    default = torch.get_default_dtype()
    with torch.random.fork_rng():
        torch.manual_seed(SEED)
        torch.set_default_dtype(dtype)
        try:
            model = Qwen3TTSForConditionalGeneration(Qwen3TTSConfig(**model_values))
        finally:
            torch.set_default_dtype(default)
        model.save_pretrained(path)
        del model
        codec = Qwen3TTSTokenizerV2Model(Qwen3TTSTokenizerV2Config(**codec_values))
        if not silent:
            _rescale_for_signal(codec.decoder)
        codec.save_pretrained(path / "speech_tokenizer")
    # The speaker-encoder config takes no extra keys, so it cannot read back what save_pretrained writes.
    saved = json.loads((path / "config.json").read_text(encoding="utf-8"))
    write_json(path / "config.json", saved | {"speaker_encoder_config": model_values["speaker_encoder_config"]})


def build_released(release: Path, cache: Path) -> Path:
    """A real-size checkpoint of the released configuration in `release`, with random weights.

    Built once under `cache` (a folder named after the configuration's digest) and
    reused: the 1.7B model takes a minute and 4 GB of disk. The text tokenizer's
    `vocab.json`/`merges.txt` are taken from `release` or from the `tokenizer/` folder beside it.
    """
    path = cache / f"{release.name}-{_digest(release)}"
    if (path / WEIGHTS).is_file() and (path / "speech_tokenizer" / WEIGHTS).is_file():
        return path
    partial = path.with_name(path.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    model_values = json.loads((release / "config.json").read_text(encoding="utf-8"))
    codec_values = json.loads((release / "speech_tokenizer" / "config.json").read_text(encoding="utf-8"))
    write_random_weights(partial, model_values, codec_values, dtype=torch.bfloat16)
    for name in RELEASE_FILES:
        shutil.copyfile(release / name, partial / name)
    for name in CODEC_FILES:
        shutil.copyfile(release / "speech_tokenizer" / name, partial / "speech_tokenizer" / name)
    for name in TEXT_TOKENIZER_FILES:
        shutil.copyfile(_text_tokenizer_file(release, name), partial / name)
    shutil.rmtree(path, ignore_errors=True)
    partial.rename(path)
    return path


def is_checkpoint(path: Path) -> bool:
    """Whether `path` holds weights (a checkpoint to load as is) rather than a release's configuration only."""
    return (path / WEIGHTS).is_file()


def greedy_variant(checkpoint: Path, cache: Path) -> Path:
    """The same weights with greedy decoding as the default (talker and code predictor), as links beside them."""
    path = cache / f"{checkpoint.name}-greedy"
    generation = json.loads((checkpoint / "generation_config.json").read_text(encoding="utf-8"))
    if not path.is_dir():
        partial = path.with_name(path.name + ".partial")
        shutil.rmtree(partial, ignore_errors=True)
        partial.mkdir(parents=True)
        for item in checkpoint.iterdir():
            if item.name != "generation_config.json":
                (partial / item.name).symlink_to(item.resolve(), target_is_directory=item.is_dir())
        write_json(partial / "generation_config.json", generation | {"do_sample": False, "subtalker_dosample": False})
        partial.rename(path)
    return path


def write_json(path: Path, value: dict[str, Any]) -> None:
    path.write_text(json.dumps(value, indent=2), encoding="utf-8")


def _rescale_for_signal(decoder: Any) -> None:
    """Give the codec decoder weights that keep the signal's scale, so random codes decode to audible noise.

    The transformers default (std 0.02 everywhere, zero codebooks) decodes every code to silence,
    which would make any comparison of decoded audio vacuous.
    """
    with torch.no_grad():
        for name, parameter in decoder.named_parameters():
            if name.endswith("embedding_sum"):
                parameter.normal_(0.0, 1.0)
            elif name.endswith("weight") and parameter.dim() >= 2:
                fan_in = parameter[0].numel() if "conv" in name else parameter.shape[-1]
                parameter.normal_(0.0, fan_in**-0.5)
        decoder.decoder[-1].conv.weight.mul_(OUTPUT_GAIN)


def _text_tokenizer_file(release: Path, name: str) -> Path:
    for folder in (release, release.parent / "tokenizer"):
        if (folder / name).is_file():
            return folder / name
    raise FileNotFoundError(f"{name}: not in {release} nor in {release.parent / 'tokenizer'}")


def _digest(release: Path) -> str:
    """What the built weights depend on: the configuration files, the seed, this builder's version."""
    digest = hashlib.sha256(f"seed={SEED};gain={OUTPUT_GAIN};v1".encode())
    for name in ("config.json", "speech_tokenizer/config.json"):
        digest.update((release / name).read_bytes())
    return digest.hexdigest()[:12]
