"""The one place that reads the environment: a frozen Settings object.

Every knob is an environment variable (upper case, as in the README's table);
the CLI may override some of them. Nothing else in the package reads os.environ (`MODE=ray` sets one
of Ray's own variables before it starts Ray: `gateway/ray/__init__.py`).
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any

from media_server.errors import ConfigError

QWEN_MAX_CHUNK_FRAMES = 32
"""The most codec frames one Qwen3-TTS decode call takes per sequence (and so one audio chunk)."""
_FOREVER = float("inf")
DNS_LABEL = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?")

CHOICES: dict[str, tuple[str, ...]] = {
    "log_level": ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"),
    "tts_backend": ("piper", "qwen"),
    "mode": ("standalone", "gateway", "ray"),
    "qwen_device": ("auto", "cpu", "cuda"),
    "qwen_quant": ("none", "int8", "fp8"),
    "qwen_dtype": ("auto", "bfloat16", "float32"),
}
"""Every setting with a fixed set of values, checked when Settings is built (the one place)."""

LIMITS: dict[str, tuple[float, float]] = {
    "port": (0, 65535),
    "wyoming_port": (0, 65535),
    "audiosocket_port": (0, 65535),
    "qwen_max_batch": (1, 256),
    "qwen_first_chunk_frames": (1, QWEN_MAX_CHUNK_FRAMES),
    "qwen_chunk_frames": (1, QWEN_MAX_CHUNK_FRAMES),
    "qwen_prefill_chunk": (1, _FOREVER),
    "engine_workers": (1, 64),
    "onnx_threads": (1, 64),
    "step_budget_ms": (1, 10_000),
    "max_queue": (1, _FOREVER),
    "max_batch_queue": (1, _FOREVER),
    "engine_max_outstanding": (1, _FOREVER),
    "audio_cache_bytes": (0, _FOREVER),
    "loudness_lufs": (-70, 0),
    "ttfa_budget_ms": (0, _FOREVER),
    "idle_timeout": (0, _FOREVER),
    "shutdown_grace": (0, _FOREVER),
    "max_text_chars": (1, 1_000_000),
    "max_body_bytes": (1, _FOREVER),
    "max_upload_bytes": (1, _FOREVER),
    "body_timeout": (0, _FOREVER),
    "first_segment_words": (1, 1000),
    "max_peers": (1, _FOREVER),
    "rtc_connect_timeout": (0.1, _FOREVER),
    "rtc_idle_timeout": (0.1, _FOREVER),
    "max_queued_utterances": (1, _FOREVER),
    "max_message_bytes": (1, _FOREVER),
    "rate_limit_per_minute": (0, _FOREVER),
    "rate_limit_burst": (1, _FOREVER),
    "max_sdp_bytes": (1, _FOREVER),
    "rtc_max_remote_candidates": (1, _FOREVER),
    "rtc_ice_checks_per_second": (0.1, _FOREVER),
    "max_messages_per_second": (0, _FOREVER),
    "max_unsent_bytes": (0, _FOREVER),
    "send_timeout": (0, _FOREVER),
    "max_peers_per_ip": (0, _FOREVER),
    "turn_ttl": (1, _FOREVER),
    "remote_audio_max_bytes": (1, _FOREVER),
    "remote_audio_timeout": (0.1, _FOREVER),
    "worker_stall_timeout": (0.1, _FOREVER),
    "max_dictionaries": (0, 100_000),
    "max_dictionary_rules": (1, 100_000),
    "engine_replicas": (1, 1024),
    "engine_max_replicas": (0, 1024),
    "engine_target_first_audio_ms": (1, _FOREVER),
}
"""Every numeric setting's range, checked when Settings is built."""


@dataclass(frozen=True)
class Settings:
    """Server settings; field names are the lower-case environment variables."""

    host: str = "127.0.0.1"
    port: int = 8080
    unix: str | None = None
    wyoming_port: int = 0
    """A Wyoming TCP server (Home Assistant) on `HOST` at this port; 0: none."""
    wyoming_zeroconf: str | None = None
    """Announce the Wyoming server over mDNS under this name (a DNS label), for Home Assistant's discovery."""
    audiosocket_port: int = 0
    """An Asterisk AudioSocket TCP listener on `HOST` at this port; 0: none."""
    log_level: str = "INFO"
    log_json: bool = False

    tts_backend: str = "piper"
    piper_model: str | None = None
    qwen_model: str | None = None
    qwen_device: str = "auto"
    qwen_max_batch: int = 8
    qwen_first_chunk_frames: int = 1
    qwen_chunk_frames: int = 4
    qwen_prefill_chunk: int = 256
    qwen_quant: str = "none"
    qwen_dtype: str = "auto"
    qwen_tf32: bool = True
    qwen_compile: bool = False
    qwen_warmup: bool = True
    voice_cache_dir: str = "~/.cache/media-server/voices"
    dictionary_dir: str = "~/.cache/media-server/dictionaries"
    max_dictionaries: int = 100
    max_dictionary_rules: int = 1000
    pronunciation_dictionaries: tuple[str, ...] = ()
    engine_workers: int = 2
    onnx_threads: int = 1
    step_budget_ms: float = 30.0
    max_queue: int = 64
    max_batch_queue: int = 16
    engine_max_outstanding: int = 8
    audio_cache_bytes: int = 64 * 1024 * 1024
    loudness_lufs: float = -20.0
    ttfa_budget_ms: float = 2000.0
    preload_model: bool = True
    idle_timeout: float = 0.0
    shutdown_grace: float = 10.0

    max_text_chars: int = 5000
    max_body_bytes: int = 256 * 1024
    max_upload_bytes: int = 10 * 1024 * 1024
    body_timeout: float = 30.0
    first_segment_words: int = 6

    max_peers: int = 64
    rtc_connect_timeout: float = 30.0
    rtc_idle_timeout: float = 600.0
    rtc_ice_servers: tuple[Mapping[str, Any], ...] = field(default_factory=tuple)
    max_queued_utterances: int = 16
    max_message_bytes: int = 64 * 1024
    openai_voice_map: Mapping[str, str] = field(default_factory=dict)

    # security and limits
    api_keys: tuple[str, ...] = ()
    metrics_public: bool = True
    allowed_origins: tuple[str, ...] = ()
    public_origins: tuple[str, ...] = ()
    trusted_proxies: tuple[str, ...] = ()
    rate_limit_per_minute: int = 0
    rate_limit_burst: int = 20
    max_sdp_bytes: int = 64 * 1024
    rtc_max_remote_candidates: int = 32
    rtc_private_candidates: bool | None = None  # None: allowed while the server listens on loopback
    rtc_candidate_networks: tuple[str, ...] = ()
    rtc_ice_checks_per_second: float = 20.0
    max_messages_per_second: float = 100.0
    max_unsent_bytes: int = 1024 * 1024
    send_timeout: float = 30.0
    max_peers_per_ip: int = 0
    turn_urls: tuple[str, ...] = ()
    turn_secret: str | None = None
    turn_ttl: int = 3600
    allow_remote_audio_urls: bool = False
    remote_audio_hosts: tuple[str, ...] = ()
    remote_audio_allow_private: bool = False
    remote_audio_max_bytes: int = 10 * 1024 * 1024
    remote_audio_timeout: float = 10.0

    # gateway/worker mode
    mode: str = "standalone"
    worker_stall_timeout: float = 10.0

    # ray mode
    engine_replicas: int = 1
    engine_max_replicas: int = 0
    engine_target_first_audio_ms: float = 100.0
    ray_address: str | None = None

    def __post_init__(self) -> None:
        for name, allowed in CHOICES.items():
            value = getattr(self, name)
            if value not in allowed:
                raise ConfigError(f"{name.upper()}={value!r}: expected one of {', '.join(allowed)}")
        for name, (low, high) in LIMITS.items():
            value = getattr(self, name)
            if not low <= value <= high:
                raise ConfigError(f"{name.upper()}={value!r}: must be in [{low:g}, {high:g}]")
        if 0 < self.engine_max_replicas < self.engine_replicas:
            raise ConfigError(
                f"ENGINE_MAX_REPLICAS={self.engine_max_replicas!r}: must be 0 (no autoscaling) or at least "
                f"ENGINE_REPLICAS ({self.engine_replicas})"
            )
        if self.wyoming_zeroconf is not None:
            if not DNS_LABEL.fullmatch(self.wyoming_zeroconf):
                raise ConfigError(
                    f"WYOMING_ZEROCONF={self.wyoming_zeroconf!r}: a DNS label: 1-63 letters, digits or inner hyphens"
                )
            if not self.wyoming_port:
                raise ConfigError("WYOMING_ZEROCONF: announces the Wyoming server, so WYOMING_PORT must be set too")

    @property
    def engine_autoscales(self) -> bool:
        """`MODE=ray`: whether Serve scales the engine between `ENGINE_REPLICAS` and `ENGINE_MAX_REPLICAS`."""
        return self.engine_max_replicas > self.engine_replicas

    @property
    def listens_everywhere(self) -> bool:
        """True when `HOST` is a wildcard: every interface of the machine."""
        return self.host in ("", "0.0.0.0", "::")

    @property
    def listens_on_loopback(self) -> bool:
        """True on a development machine: `HOST` is `localhost` or a loopback address."""
        if self.host == "localhost":
            return True
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return False

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Build settings from `env` (default: the process environment), then `overrides`."""
        source = os.environ if env is None else env
        values: dict[str, Any] = {}
        for f in fields(cls):
            raw = source.get(f.name.upper())
            if raw is not None and raw != "":
                values[f.name] = _parse(f.name, str(f.type), raw)
        settings = cls(**values)
        return replace(settings, **{k: v for k, v in overrides.items() if v is not None})


def _parse(name: str, type_name: str, raw: str) -> Any:
    try:
        if name == "log_level":
            return raw.strip().upper()
        if name == "openai_voice_map":
            table = json.loads(raw)
            if not isinstance(table, dict) or not all(isinstance(v, str) for v in table.values()):
                raise ValueError('expected a JSON object such as {"alloy": "en_US-joe-medium"}')
            return table
        if name == "rtc_ice_servers":
            servers = json.loads(raw)
            if not isinstance(servers, list):
                raise ValueError("expected a JSON list of RTCIceServer objects")
            return tuple(servers)
        if type_name == "tuple[str, ...]":
            items = tuple(item.strip() for item in raw.split(",") if item.strip())
            if not items:
                # A list that is set but names nothing is a mistake (`API_KEYS=" , "` must not mean "no keys").
                raise ValueError("set, but lists nothing; name at least one item or leave it unset")
            return items
        if type_name.startswith("bool"):
            return _parse_bool(raw)
        if type_name.startswith("int"):
            return int(raw)
        if type_name.startswith("float"):
            return float(raw)
    except ValueError as exc:
        raise ConfigError(f"{name.upper()}={raw!r}: {exc}") from exc
    return raw


def _parse_bool(raw: str) -> bool:
    lowered = raw.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ValueError("expected one of 1/0, true/false, yes/no, on/off")
