"""Cloned voices: reference validation, content addressing, and the on-disk prompt cache.

A clone is addressed by a digest of its reference (the waveform as float32,
its sample rate and the transcript), so the same reference always maps to the
same voice id and is computed once. Prompts are stored one file per clone in
`VOICE_CACHE_DIR/<model key>/`, where the model key changes with the checkpoint's
location and weight files (a prompt made by one model's speaker encoder means
nothing to another);
files are written atomically and read back with `torch.load(weights_only=True)`.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import torch

from media_server.engine.backends.qwen.prompt import ClonePrompt
from media_server.errors import InvalidRequest

log = logging.getLogger(__name__)

MIN_REFERENCE_S = 1.0
MAX_REFERENCE_S = 30.0
MIN_SAMPLE_RATE = 8000
MAX_SAMPLE_RATE = 48000
SILENCE_RMS = 10 ** (-50 / 20)
"""A reference quieter than -50 dBFS RMS is treated as silence."""
MAX_TRANSCRIPT_CHARS = 1000
MAX_NAME_CHARS = 100
CLONE_PREFIX = "clone-"

Waveform = npt.NDArray[np.float32]


@dataclass(frozen=True)
class StoredClone:
    digest: str
    name: str
    prompt: ClonePrompt

    @property
    def voice_id(self) -> str:
        return f"{CLONE_PREFIX}{self.digest[:16]}"


def as_waveform(reference_pcm: npt.NDArray[np.generic]) -> Waveform:
    """Mono float32 in [-1, 1] from int16 PCM or float samples; raises InvalidRequest naming the field."""
    samples = np.asarray(reference_pcm)
    if samples.ndim != 1:
        raise InvalidRequest("reference_audio: must be mono (a single channel of samples)")
    if samples.dtype == np.int16:
        return (samples.astype(np.float32) / 32768.0).astype(np.float32)
    if not np.issubdtype(samples.dtype, np.floating):
        raise InvalidRequest(f"reference_audio: samples must be int16 PCM or float, not {samples.dtype}")
    if not np.isfinite(samples).all():
        raise InvalidRequest("reference_audio: contains NaN or infinite samples")
    return samples.astype(np.float32)


def validate_reference(waveform: Waveform, sample_rate: int, transcript: str | None, name: str) -> None:
    if not MIN_SAMPLE_RATE <= sample_rate <= MAX_SAMPLE_RATE:
        raise InvalidRequest(f"sample_rate: {sample_rate} Hz is outside {MIN_SAMPLE_RATE}-{MAX_SAMPLE_RATE} Hz")
    seconds = len(waveform) / sample_rate
    if not MIN_REFERENCE_S <= seconds <= MAX_REFERENCE_S:
        raise InvalidRequest(
            f"reference_audio: {seconds:.2f} s of audio; give {MIN_REFERENCE_S:g}-{MAX_REFERENCE_S:g} s of speech"
        )
    if float(np.sqrt(np.mean(np.square(waveform, dtype=np.float64)))) < SILENCE_RMS:
        raise InvalidRequest("reference_audio: is silent (below -50 dBFS); record some speech")
    if transcript is not None and not transcript.strip():
        raise InvalidRequest("transcript: must not be empty (leave it out to clone from the voice timbre only)")
    if transcript is not None and len(transcript) > MAX_TRANSCRIPT_CHARS:
        raise InvalidRequest(f"transcript: {len(transcript)} characters is over {MAX_TRANSCRIPT_CHARS}")
    if not name.strip() or len(name) > MAX_NAME_CHARS:
        raise InvalidRequest(f"name: must be 1-{MAX_NAME_CHARS} characters")


def reference_digest(waveform: Waveform, sample_rate: int, transcript: str | None) -> str:
    digest = hashlib.sha256()
    digest.update(f"{sample_rate}\n{transcript is not None}\n{transcript or ''}\n".encode())
    digest.update(np.ascontiguousarray(waveform, dtype=np.float32).tobytes())
    return digest.hexdigest()


class CloneLibrary:
    """The cloned voices of one model: in memory by digest, and one `<digest>.pt` file each on disk."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._clones: dict[str, StoredClone] = {}

    def load(self) -> list[StoredClone]:
        """Read every stored clone (skipping unreadable files) and return them."""
        for path in sorted(self.directory.glob("*.pt")):
            try:
                data = torch.load(path, map_location="cpu", weights_only=True)
                prompt = ClonePrompt(
                    speaker_embedding=data["speaker_embedding"],
                    reference_codes=data["reference_codes"],
                    reference_text=data["reference_text"],
                )
                self._clones[path.stem] = StoredClone(digest=path.stem, name=str(data["name"]), prompt=prompt)
            except (OSError, RuntimeError, KeyError, TypeError) as exc:
                log.warning("skipping unreadable cloned voice %s: %s", path, exc)
        return list(self._clones.values())

    def find(self, digest: str) -> StoredClone | None:
        return self._clones.get(digest)

    def add(self, clone: StoredClone) -> None:
        """Keep `clone` and write it to disk (atomically)."""
        self.directory.mkdir(parents=True, exist_ok=True)
        prompt = clone.prompt
        codes = prompt.reference_codes
        data = {
            "name": clone.name,
            "speaker_embedding": prompt.speaker_embedding.detach().to("cpu", torch.float32),
            "reference_codes": None if codes is None else codes.detach().to("cpu", torch.long),
            "reference_text": prompt.reference_text,
        }
        fd, temporary = tempfile.mkstemp(dir=self.directory, suffix=".tmp")
        os.close(fd)
        try:
            torch.save(data, temporary)
            os.replace(temporary, self.directory / f"{clone.digest}.pt")
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
        self._clones[clone.digest] = clone

    def remove(self, voice_id: str) -> None:
        for digest, clone in list(self._clones.items()):
            if clone.voice_id == voice_id:
                (self.directory / f"{digest}.pt").unlink(missing_ok=True)
                del self._clones[digest]


def model_key(model_name: str, revision: str | None) -> str:
    """Names the cache directory of one checkpoint: its location and the identity of its weights."""
    path = Path(model_name).expanduser()
    if path.is_dir():
        weights = sorted(p for p in path.rglob("*") if p.suffix in (".safetensors", ".bin"))
        identity = [f"{p.relative_to(path)}:{p.stat().st_size}:{p.stat().st_mtime_ns}" for p in weights]
        fingerprint = "\n".join([str(path.resolve()), *identity])
    else:
        fingerprint = f"{model_name}@{revision}"
    return hashlib.sha256(fingerprint.encode()).hexdigest()[:16]
