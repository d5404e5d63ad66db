"""A tiny random-weight Qwen3-TTS checkpoint on disk, for tests of the qwen backend.

It has the layout of a real release (config.json and safetensors weights of
`Qwen3TTSForConditionalGeneration`, a Qwen2-style byte-level BPE tokenizer,
`speech_tokenizer/` with a 12 Hz codec, `generation_config.json`), so the
backend loads it through the real `from_pretrained` path; only the sizes are
shrunk. The codec keeps the real 1920-sample hop at 24 kHz (12.5 frames/s).

`codebook_size` sets how rare the end-of-speech token is: the talker's logits
are near uniform over the codebook plus EOS, so a large codebook makes
utterances run to their frame bound and a small one ends them within a few
frames.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import pytest
from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers

from loadtest.qwen_checkpoint import write_json, write_random_weights

ModelKind = Literal["custom_voice", "voice_design", "base"]

SPEAKERS = ("aiden", "serena", "dylan")
DIALECTS: dict[str, str | bool] = {"aiden": False, "serena": False, "dylan": "beijing_dialect"}
LANGUAGES = ("chinese", "english", "german", "beijing_dialect")
NUM_CODE_GROUPS = 4
HIDDEN = 32
# Talker ids at and above the codebook are control tokens (the top 1024 ids are never sampled but EOS).
CONTROL_TOKENS = 1024
SPECIAL_TEXT_TOKENS = ("<|endoftext|>", "<|im_start|>", "<|im_end|>", "<tts_pad>", "<tts_text_bos>", "<tts_eos>")
# Whole-word tokens that the chat template needs to be single tokens, as in the real vocabulary.
ROLE_TOKENS = ("assistant", "user")


def build_checkpoint(
    path: Path,
    kind: ModelKind = "custom_voice",
    codebook_size: int = 1024,
    greedy: bool = False,
    silent: bool = False,
) -> Path:
    """Write a tiny checkpoint of `kind` under `path` (created) and return `path`.

    `greedy` makes the checkpoint's default decoding greedy for both the talker and the code predictor;
    `silent` leaves the codec decoder as transformers initializes it, which decodes every code to silence.
    """
    path.mkdir(parents=True, exist_ok=True)
    text_ids = _write_text_tokenizer(path)
    values = _model_config(kind, codebook_size, text_ids)
    write_random_weights(path, values, _codec_config(codebook_size), silent=silent)
    write_json(path / "generation_config.json", _generation_config(greedy))
    write_json(path / "preprocessor_config.json", {"processor_class": "Qwen3TTSProcessor"})
    write_json(path / "speech_tokenizer" / "preprocessor_config.json", _feature_extractor_config())
    return path


def _model_config(kind: ModelKind, codebook_size: int, text_ids: dict[str, int]) -> dict[str, Any]:
    vocab = codebook_size + CONTROL_TOKENS
    control = iter(range(codebook_size, vocab))
    codec_ids = {name: next(control) for name in ("pad", "bos", "eos", "think", "nothink", "think_bos", "think_eos")}
    speakers = {name: next(control) for name in SPEAKERS} if kind == "custom_voice" else {}
    talker = {
        "vocab_size": vocab,
        "hidden_size": HIDDEN,
        "intermediate_size": 64,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "head_dim": 8,
        "max_position_embeddings": 4096,
        "rope_theta": 10000,
        "rope_scaling": {"rope_type": "default", "mrope_section": [2, 1, 1], "interleaved": True},
        "num_code_groups": NUM_CODE_GROUPS,
        "text_hidden_size": HIDDEN,
        "text_vocab_size": len(text_ids) + 8,
        "codec_eos_token_id": codec_ids["eos"],
        "codec_think_id": codec_ids["think"],
        "codec_nothink_id": codec_ids["nothink"],
        "codec_think_bos_id": codec_ids["think_bos"],
        "codec_think_eos_id": codec_ids["think_eos"],
        "codec_pad_id": codec_ids["pad"],
        "codec_bos_id": codec_ids["bos"],
        "spk_id": speakers,
        "spk_is_dialect": {name: DIALECTS[name] for name in speakers},
        "codec_language_id": {name: next(control) for name in LANGUAGES},
        "code_predictor_config": {
            "vocab_size": codebook_size,
            "hidden_size": 16,
            "intermediate_size": 32,
            "num_hidden_layers": 1,
            "num_attention_heads": 2,
            "num_key_value_heads": 1,
            "head_dim": 8,
            "max_position_embeddings": 64,
            "num_code_groups": NUM_CODE_GROUPS,
        },
    }
    speaker_encoder = {
        "mel_dim": 128,
        "enc_dim": HIDDEN,
        "enc_channels": [16, 16, 16, 16, 48],
        "enc_attention_channels": 8,
        "enc_res2net_scale": 2,
        "enc_se_channels": 8,
    }
    return {
        "talker_config": talker,
        "speaker_encoder_config": speaker_encoder,
        "tokenizer_type": "qwen3_tts_tokenizer_12hz",
        "tts_model_size": "1b7",
        "tts_model_type": kind,
        "im_start_token_id": text_ids["<|im_start|>"],
        "im_end_token_id": text_ids["<|im_end|>"],
        "tts_pad_token_id": text_ids["<tts_pad>"],
        "tts_bos_token_id": text_ids["<tts_text_bos>"],
        "tts_eos_token_id": text_ids["<tts_eos>"],
    }


def _codec_config(codebook_size: int) -> dict[str, Any]:
    encoder = {
        "hidden_size": 16,
        "num_filters": 2,
        "upsampling_ratios": [8, 6, 5, 4],
        "codebook_size": codebook_size,
        "codebook_dim": 16,
        "vector_quantization_hidden_dimension": 16,
        "num_quantizers": NUM_CODE_GROUPS,
        "num_semantic_quantizers": 1,
        "upsample_groups": 16,
        "num_hidden_layers": 1,
        "intermediate_size": 32,
        "num_attention_heads": 2,
        "num_key_value_heads": 2,
        "frame_rate": 12.5,
        "sliding_window": 250,
    }
    decoder = {
        "codebook_size": codebook_size,
        "codebook_dim": 16,
        "hidden_size": 16,
        "latent_dim": 16,
        "num_attention_heads": 2,
        "num_key_value_heads": 2,
        "head_dim": 8,
        "intermediate_size": 32,
        "num_hidden_layers": 2,
        "sliding_window": 72,
        "num_quantizers": NUM_CODE_GROUPS,
        "decoder_dim": 32,
    }
    return {
        "encoder_config": encoder,
        "decoder_config": decoder,
        "encoder_valid_num_quantizers": NUM_CODE_GROUPS,
    }


def _generation_config(greedy: bool) -> dict[str, Any]:
    return {
        "do_sample": not greedy,
        "top_k": 50,
        "top_p": 1.0,
        "temperature": 0.9,
        "repetition_penalty": 1.05,
        "subtalker_dosample": not greedy,
        "subtalker_top_k": 50,
        "subtalker_top_p": 1.0,
        "subtalker_temperature": 0.9,
        "max_new_tokens": 8192,
    }


def _feature_extractor_config() -> dict[str, Any]:
    return {
        "feature_extractor_type": "EncodecFeatureExtractor",
        "feature_size": 1,
        "sampling_rate": 24000,
        "padding_side": "right",
        "padding_value": 0.0,
        "return_attention_mask": True,
    }


def _write_text_tokenizer(path: Path) -> dict[str, int]:
    """A byte-level BPE without merges (every byte a token) plus the special and role tokens."""
    alphabet = pre_tokenizers.ByteLevel.alphabet()
    vocab = {symbol: index for index, symbol in enumerate(sorted(alphabet))}
    tokenizer = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tokenizer.decoder = decoders.ByteLevel()
    tokenizer.add_tokens([AddedToken(word, single_word=True, normalized=False) for word in ROLE_TOKENS])
    tokenizer.add_special_tokens([AddedToken(token, special=True) for token in SPECIAL_TEXT_TOKENS])
    tokenizer.save(str(path / "tokenizer.json"))
    write_json(
        path / "tokenizer_config.json",
        {
            "tokenizer_class": "Qwen2Tokenizer",
            "processor_class": "Qwen3TTSProcessor",
            "model_max_length": 32768,
            "eos_token": "<|im_end|>",
            "pad_token": "<|endoftext|>",
            "bos_token": None,
            "unk_token": None,
            "clean_up_tokenization_spaces": False,
        },
    )
    ids: dict[str, int] = tokenizer.get_vocab()
    return ids


def tiny_server_env(factory: pytest.TempPathFactory, silent: bool = False) -> dict[str, str]:
    """Settings for a server on a fresh tiny Base checkpoint (voice cloning) on the CPU (`silent`: see above)."""
    model = build_checkpoint(factory.mktemp("base"), "base", codebook_size=8, silent=silent)
    return {
        "TTS_BACKEND": "qwen",
        "QWEN_MODEL": str(model),
        "QWEN_DEVICE": "cpu",
        "QWEN_WARMUP": "false",
        "ENGINE_WORKERS": "1",
        "VOICE_CACHE_DIR": str(factory.mktemp("voices")),
    }
