"""Loading a Qwen3-TTS checkpoint: device, dtype, attention kernel, and the GPU-only tuning switches.

bf16 on CUDA, fp32 on CPU, unless `QWEN_DTYPE` says otherwise. The model is loaded with PyTorch SDPA attention:
the step loop drives the model's decoder layers with per-row 4-D masks over
slot-indexed caches (see `frames.py`), which transformers' flash-attention-2
path cannot take (it accepts 2-D padding masks only), and qwen_tts loads the
codec without forwarding the attention choice anyway. TF32 and torch.compile
(CUDA graphs) apply on CUDA only and are no-ops on CPU; torchao quantization of
the talker is int8 weight-only (any device) or fp8 (CUDA, compute capability 8.9+).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, TypeVar, cast

import qwen_tts
import torch

from media_server.config import Settings
from media_server.errors import ConfigError

log = logging.getLogger(__name__)


SUPPORTED_CODEC = "qwen3_tts_tokenizer_12hz"

F = TypeVar("F", bound=Callable[..., Any])


def resolve_device(setting: str) -> torch.device:
    if setting == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if setting == "cuda" and not torch.cuda.is_available():
        raise ConfigError("QWEN_DEVICE=cuda: no CUDA device is available")
    return torch.device(setting)


def model_dtype(settings: Settings, device: torch.device) -> torch.dtype:
    """`QWEN_DTYPE`, or for `auto` bf16 on CUDA and fp32 elsewhere (CPU bf16 matmuls are slow)."""
    if settings.qwen_dtype == "auto":
        return torch.bfloat16 if device.type == "cuda" else torch.float32
    dtype: torch.dtype = getattr(torch, settings.qwen_dtype)
    return dtype


def load_model(settings: Settings, device: torch.device) -> Any:
    """The `qwen_tts.Qwen3TTSModel` wrapper (model + processor) for `QWEN_MODEL`, in eval mode."""
    if not settings.qwen_model:
        raise ConfigError("QWEN_MODEL: set it to a local Qwen3-TTS checkpoint directory or a hub id")
    cuda = device.type == "cuda"
    if settings.qwen_quant == "fp8" and not (cuda and torch.cuda.get_device_capability(device) >= (8, 9)):
        raise ConfigError("QWEN_QUANT=fp8: needs a CUDA GPU with compute capability 8.9 or later")
    if cuda and settings.qwen_tf32:
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    try:
        wrapper = qwen_tts.Qwen3TTSModel.from_pretrained(
            settings.qwen_model,
            device_map=str(device),
            dtype=model_dtype(settings, device),
            attn_implementation="sdpa",
        )
    except (OSError, ValueError) as exc:
        raise ConfigError(f"QWEN_MODEL={settings.qwen_model!r}: cannot load the checkpoint: {exc}") from exc
    model = wrapper.model
    if model.tokenizer_type != SUPPORTED_CODEC:
        raise ConfigError(
            f"QWEN_MODEL={settings.qwen_model!r}: tokenizer {model.tokenizer_type!r} is not supported; "
            f"token-level streaming needs a {SUPPORTED_CODEC} checkpoint"
        )
    model.eval().requires_grad_(False)
    if settings.qwen_quant != "none":
        _quantize(model.talker, settings.qwen_quant)
    return wrapper


def maybe_compile(function: F, settings: Settings, device: torch.device, shapes: int) -> F:
    """`function` compiled into CUDA graphs when QWEN_COMPILE is set on a GPU; itself otherwise.

    It is compiled once per input shape, `shapes` in all (warm-up compiles them
    all), so torch's recompile limit is raised to allow that many.
    """
    if not (settings.qwen_compile and device.type == "cuda"):
        return function
    limits = torch._dynamo.config
    limits.recompile_limit = max(limits.recompile_limit, shapes)
    return cast(F, torch.compile(function, mode="reduce-overhead", fullgraph=True, dynamic=False))


def _quantize(module: torch.nn.Module, mode: str) -> None:
    """int8 weight-only, or fp8 weights and activations, for the linears of the talker and code predictor."""
    try:
        from torchao.quantization import (
            Float8DynamicActivationFloat8WeightConfig,
            Int8WeightOnlyConfig,
            quantize_,
        )
    except ImportError as exc:
        raise ConfigError(f"QWEN_QUANT={mode}: needs torchao: pip install torchao") from exc
    config = Int8WeightOnlyConfig() if mode == "int8" else Float8DynamicActivationFloat8WeightConfig()
    quantize_(module, config)
    log.info("quantized the talker to %s with torchao", mode)
