"""Qwen3-TTS with token-level streaming and continuous batching (`TTS_BACKEND=qwen`, `QWEN_MODEL=...`).

qwen_tts has no streaming API, so this backend runs its own step loop over the
model's talker and code predictor (`frames.py`): every `step` advances
each given sequence by one 12.5 Hz codec frame in one batched forward, and a
sequence's audio is decoded incrementally (`codec.py`), the first chunk
after `QWEN_FIRST_CHUNK_FRAMES` frames and then every `QWEN_CHUNK_FRAMES`.
Output is mono int16 at the codec's rate (24 kHz). The model says nothing of
when it speaks each word: when a segment ends, its audio goes to an `Aligner`
(`EstimatingAligner` until a forced aligner can be installed: estimated word
timings). Each sequence owns a slot of
the static KV cache from `open` to `close`; `max_batch = max_sequences =
QWEN_MAX_BATCH`.

The model is not thread-safe: every method that touches it holds one lock,
so it stays correct even if the engine ran more than one worker; the engine is
expected to drive it from one thread. Voice cloning (`create_voice`,
`delete_voice`) is plain blocking model work, meant to be
called on that same thread. The model has no speed control (`native_speed` is
False: the engine stretches the audio).
"""

from __future__ import annotations

import contextlib
import io
import threading
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from media_server.config import Settings
from media_server.errors import ConfigError, InvalidRequest, NotFound, UnknownVoice

with contextlib.redirect_stdout(io.StringIO()):  # qwen_tts prints a flash-attn banner when imported
    try:
        import qwen_tts  # noqa: F401  (imported before the modules below, so that its absence is a ConfigError)
        import torch
    except ModuleNotFoundError as exc:
        raise ConfigError(
            f"TTS_BACKEND=qwen needs torch and qwen-tts ({exc.name} is missing): pip install -e '.[qwen]'"
        ) from exc

from media_server.engine.backends.qwen.clones import (
    CloneLibrary,
    StoredClone,
    as_waveform,
    model_key,
    reference_digest,
    validate_reference,
)
from media_server.engine.backends.qwen.codec import CodecInput, StreamingCodec
from media_server.engine.backends.qwen.frames import FrameEngine
from media_server.engine.backends.qwen.loading import load_model, maybe_compile, resolve_device
from media_server.engine.backends.qwen.prompt import ClonePrompt, Conditioning, PromptBuilder
from media_server.engine.backends.qwen.sampling import SamplingDefaults
from media_server.engine.backends.qwen.sequence import MIN_SEGMENT_FRAMES, QwenSequence, frame_budget
from media_server.engine.backends.qwen.timing import StepClock, StepTimes
from media_server.engine.backends.qwen.voices import QwenVoices, VoiceSpec
from media_server.engine.types import Pcm, SamplingParams, SynthesisRequest, Voice
from media_server.engine.words import Aligner, EstimatingAligner, WordSpan
from media_server.text.segmenter import SegmenterPolicy, split_text_located

CONTEXT = 2048
"""Talker cache positions per slot: a segment's prompt plus its frames."""
WARMUP_TEXT = "Warming up the voice."
WARMUP_FRAMES = 3
_NO_AUDIO: Pcm = np.empty(0, dtype=np.int16)

FrameSampler = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]
Decoder = Callable[[torch.Tensor, torch.Tensor, torch.Tensor, int], None]


@dataclass
class _Runtime:
    """Everything `load` makes and `unload` drops."""

    wrapper: Any
    model: Any
    prompts: PromptBuilder
    codec: StreamingCodec
    catalog: QwenVoices
    defaults: SamplingDefaults
    frames: FrameEngine
    sample_frame: FrameSampler
    decode: Decoder
    compiled: bool
    library: CloneLibrary
    clock: StepClock
    specs: dict[str, VoiceSpec] = field(default_factory=dict)


class QwenBackend:
    """Backend protocol implementation over a loaded Qwen3-TTS checkpoint."""

    name = "qwen"
    native_speed = False
    deterministic = False

    def __init__(self, settings: Settings, aligner: Aligner | None = None) -> None:
        self.max_batch = settings.qwen_max_batch
        self._aligner = aligner or EstimatingAligner()
        self.max_sequences: int | None = settings.qwen_max_batch
        self._settings = settings
        self._policy = SegmenterPolicy(first_segment_words=settings.first_segment_words)
        self._lock = threading.Lock()
        self._runtime: _Runtime | None = None
        self._positions = [0] * self.max_batch
        self._free = list(range(self.max_batch))

    def load(self) -> None:
        settings = self._settings
        device = resolve_device(settings.qwen_device)
        compiled = settings.qwen_compile and device.type == "cuda"
        with torch.inference_mode():
            wrapper = load_model(settings, device)
            model = wrapper.model
            codec = StreamingCodec(model.speech_tokenizer, self.max_batch)
            defaults = SamplingDefaults.from_generate_config(model.generate_config or {})
            frames = FrameEngine(model.talker, self.max_batch, CONTEXT, defaults, static=compiled)
        if compiled:
            for buffer in frames.buffers():
                torch._dynamo.mark_static_address(buffer)
        key = model_key(str(settings.qwen_model), getattr(model.config, "_commit_hash", None))
        runtime = _Runtime(
            wrapper=wrapper,
            model=model,
            prompts=PromptBuilder(model, wrapper.processor.tokenizer),
            codec=codec,
            catalog=QwenVoices(model, codec.sample_rate),
            defaults=defaults,
            frames=frames,
            sample_frame=maybe_compile(frames.sample_frame, settings, device, shapes=1),
            decode=maybe_compile(frames.decode, settings, device, shapes=len(frames.attention_lengths())),
            compiled=compiled,
            library=CloneLibrary(Path(settings.voice_cache_dir).expanduser() / key),
            clock=StepClock(device),
        )
        runtime.specs = {spec.voice.id: spec for spec in runtime.catalog.builtin()}
        for clone in runtime.library.load():
            _register(runtime, clone)
        with self._lock:
            self._runtime = runtime
            self._positions = [0] * self.max_batch
            self._free = list(range(self.max_batch))
        if settings.qwen_warmup:
            self._warm_up()

    def unload(self) -> None:
        """Drop the model and every cache (open sequences are invalid afterwards); `load` rebuilds them."""
        with self._lock:
            self._runtime = None
        if torch.cuda.is_available():
            torch.cuda.empty_cache()

    @property
    def device(self) -> torch.device:
        return self._rt.frames.device

    @property
    def _rt(self) -> _Runtime:
        if self._runtime is None:
            raise RuntimeError("the qwen backend is not loaded")
        return self._runtime

    def voices(self) -> Sequence[Voice]:
        """Safe from any thread: the voice table is replaced, never changed in place."""
        runtime = self._runtime
        return () if runtime is None else tuple(spec.voice for spec in runtime.specs.values())

    def open(self, request: SynthesisRequest, voice: Voice) -> QwenSequence:
        with self._lock, torch.inference_mode():
            rt = self._rt
            spec = rt.specs.get(voice.id)
            if spec is None:
                raise UnknownVoice(f"voice: {voice.id!r} is not a voice of this model")
            conditioning = rt.catalog.conditioning(spec, request, rt.prompts)
            texts = deque(split_text_located(request.text, self._policy))
            segments = deque(rt.prompts.text_ids(text) for text, _ in texts)
            self._check_context(conditioning, segments)
            if not self._free:
                raise RuntimeError(f"all {self.max_batch} sequence slots are in use")
            slot = self._free.pop(0)
            try:
                return self._take_slot(slot, request.sampling, spec, conditioning, segments, texts)
            except BaseException:
                self._free.append(slot)
                raise

    def step(self, sequences: list[QwenSequence]) -> list[Pcm | None]:
        with self._lock, torch.inference_mode():
            if any(sequence.closed for sequence in sequences):
                raise RuntimeError("step() was given a closed sequence")
            clock = self._rt.clock
            clock.start()
            live = [sequence for sequence in sequences if not sequence.done]
            self._start_segments([sequence for sequence in live if sequence.needs_prompt])
            clock.lap("prompt")
            self._prefill([sequence for sequence in live if sequence.prefilling])
            clock.lap("prefill")
            speaking = [sequence for sequence in live if not sequence.finished and not sequence.prefilling]
            if speaking:
                self._advance(speaking, clock)
            due = {sequence: frames for sequence in live if (frames := sequence.due()) is not None}
            audio = dict(zip(due, self._rt.codec.decode(list(due.values())), strict=True))
            clock.lap("codec")
            results: list[Pcm | None] = []
            for sequence in sequences:
                pcm = audio.get(sequence, _NO_AUDIO)
                self._time_words(sequence, pcm)
                if sequence.done:
                    results.append(None)
                elif sequence.finished:
                    sequence.done = True
                    results.append(pcm if len(pcm) else None)
                else:
                    results.append(pcm)
            clock.lap("results")
            clock.stop(len(speaking))
            return results

    def take_step_times(self) -> StepTimes:
        """Time per phase of every step since the last call (`timing.py`), and the frames they made."""
        with self._lock:
            return self._rt.clock.take()

    def lead_s(self, sequence: QwenSequence) -> float:
        """Every step advances every sequence by one frame: no sequence needs to start earlier than another."""
        return 0.0

    def words(self, sequence: QwenSequence) -> list[WordSpan]:
        """The words of each segment, timed once its last audio was decoded (estimated: see the module)."""
        timed, sequence.timed = sequence.timed, []
        return timed

    def _time_words(self, sequence: QwenSequence, pcm: Pcm) -> None:
        """Keep the segment's audio; when the segment has ended, time its words in it."""
        if len(pcm):
            sequence.said.append(pcm)
        if not sequence.ended or not sequence.texts:
            return
        sequence.ended = False
        text, starts = sequence.texts.popleft()
        audio = np.concatenate(sequence.said) if sequence.said else _NO_AUDIO
        sequence.timed.extend(self._aligner.align(text, starts, audio, sequence.said_before))
        sequence.said_before += len(audio)
        sequence.said = []

    def close(self, sequence: QwenSequence) -> None:
        with self._lock, torch.inference_mode():
            if sequence.closed:
                return
            sequence.closed = True
            self._positions[sequence.slot] = 0
            self._free.append(sequence.slot)
            if self._runtime is not None:  # back to the defaults, so a finished request's sampling plan goes too
                self._runtime.frames.rows.assign(sequence.slot, *self._runtime.defaults.talker(SamplingParams()))

    def create_voice(
        self, reference_pcm: npt.NDArray[np.generic], sample_rate: int, transcript: str | None, name: str
    ) -> Voice:
        """Clone a voice from 1-30 s of speech (in-context with a transcript, timbre-only without).

        The same reference (samples, rate, transcript) always gives the same voice, computed
        once: a second call returns it under its first name.
        """
        with self._lock, torch.inference_mode():
            rt = self._rt
            if rt.catalog.kind != "base":
                raise InvalidRequest(
                    f"reference_audio: this {rt.catalog.kind} checkpoint cannot clone voices; "
                    "load a Qwen3-TTS Base checkpoint"
                )
            waveform = as_waveform(reference_pcm)
            validate_reference(waveform, sample_rate, transcript, name)
            digest = reference_digest(waveform, sample_rate, transcript)
            existing = rt.library.find(digest)
            if existing is not None:
                return rt.specs[existing.voice_id].voice
            [item] = rt.wrapper.create_voice_clone_prompt(
                ref_audio=(waveform, sample_rate), ref_text=transcript, x_vector_only_mode=transcript is None
            )
            prompt = ClonePrompt(
                speaker_embedding=item.ref_spk_embedding,
                reference_codes=item.ref_code,
                reference_text=transcript,
            )
            clone = StoredClone(digest=digest, name=name.strip(), prompt=prompt)
            rt.library.add(clone)
            return _register(rt, clone)

    def delete_voice(self, voice_id: str) -> None:
        with self._lock:
            rt = self._rt
            spec = rt.specs.get(voice_id)
            if spec is None:
                raise NotFound(f"voice: no voice {voice_id!r}")
            if spec.clone is None:
                raise InvalidRequest(f"voice: {voice_id!r} is built into the model and cannot be deleted")
            rt.library.remove(voice_id)
            rt.specs = {key: value for key, value in rt.specs.items() if key != voice_id}

    def _take_slot(
        self,
        slot: int,
        sampling: SamplingParams,
        spec: VoiceSpec,
        conditioning: Conditioning,
        segments: deque[torch.Tensor],
        texts: deque[tuple[str, tuple[int, ...]]],
    ) -> QwenSequence:
        """Set the slot up for a new sequence: its sampling rows, random stream and codec state."""
        rt = self._rt
        self._positions[slot] = 0
        rt.frames.rows.assign(slot, *rt.defaults.talker(sampling))
        generator = torch.Generator()
        if sampling.seed is None:
            generator.seed()
        else:
            generator.manual_seed(sampling.seed)
        rt.codec.reset(slot)
        clone = spec.clone
        if clone is not None and clone.reference_codes is not None and clone.reference_text:
            # In-context cloning continues the reference's audio: decode it to prime the codec's state.
            rt.codec.decode([CodecInput(slot, clone.reference_codes.cpu().numpy())])
        return QwenSequence(
            slot=slot,
            conditioning=conditioning,
            segments=segments,
            texts=texts,
            generator=generator,
            first_chunk=self._settings.qwen_first_chunk_frames,
            chunk=self._settings.qwen_chunk_frames,
            finished=not segments,
        )

    def _check_context(self, conditioning: Conditioning, segments: deque[torch.Tensor]) -> None:
        """Refuse text whose longest segment would not fit a slot's context with room to speak."""
        if not segments:
            return
        first = self._rt.prompts.build(segments[0], conditioning)
        longest = len(first.embeds) - len(segments[0]) + max(len(ids) for ids in segments)
        if longest + MIN_SEGMENT_FRAMES + 1 > CONTEXT:
            raise InvalidRequest(
                f"text: a sentence of {max(len(ids) for ids in segments)} tokens does not fit the "
                f"model context of {CONTEXT} positions with this voice; split it"
            )

    def _start_segments(self, starting: list[QwenSequence]) -> None:
        """Build the next segment's prompt of each sequence (its prefill follows, a chunk per step)."""
        for sequence in starting:
            ids = sequence.segments.popleft()
            prompt = self._rt.prompts.build(ids, sequence.conditioning)
            sequence.start_segment(prompt, frame_budget(len(ids), len(prompt.embeds), CONTEXT))
            self._positions[sequence.slot] = sequence.position

    def _prefill(self, prefilling: list[QwenSequence]) -> None:
        """Run the next chunk of each sequence's prompt into its cache, all in one batch."""
        if not prefilling:
            return
        size = self._settings.qwen_prefill_chunk
        chunks, offsets, finishing = [], [], []
        for sequence in prefilling:
            assert sequence.prompt is not None
            start = sequence.prefilled
            chunk = sequence.prompt.embeds[start : start + size]
            sequence.prefilled = start + len(chunk)
            chunks.append(chunk)
            offsets.append(start)
            finishing.append(not sequence.prefilling)
        self._rt.frames.prefill([sequence.slot for sequence in prefilling], chunks, offsets, finishing)

    def _advance(self, speaking: list[QwenSequence], clock: StepClock) -> None:
        """One frame for every speaking sequence: sample it, then feed it to the talker."""
        rt = self._rt
        frames, pad = rt.frames, rt.prompts.pad
        # Built on the host in a few whole-batch operations: per-slot writes into tensors cost
        # one operation (a kernel launch on a GPU) each.
        uniform = torch.zeros(self.max_batch, frames.groups)
        active = [False] * self.max_batch
        eos_allowed = [False] * self.max_batch
        texts = [pad] * self.max_batch
        for sequence in speaking:
            uniform[sequence.slot].uniform_(generator=sequence.generator)
            active[sequence.slot] = True
            eos_allowed[sequence.slot] = sequence.segment_frames >= MIN_SEGMENT_FRAMES
            texts[sequence.slot] = sequence.text_input(pad)
        device = frames.device
        flags = torch.tensor([active, eos_allowed]).to(device)
        # A slot that is not stepped may sit one past its context's end; it writes (unread) at the last position.
        positions = [min(position, CONTEXT - 1) for position in self._positions]
        # Made before the predictor is queued: a host-to-device copy waits for the work already queued.
        on_device = torch.tensor(positions).to(device)
        if rt.compiled:
            torch.compiler.cudagraph_mark_step_begin()  # type: ignore[no-untyped-call]
        clock.lap("inputs")
        codes, embedded = rt.sample_frame(uniform.to(device), flags[0], flags[1])
        clock.lap("predictor")
        rt.decode(
            embedded + torch.stack(texts),
            on_device,
            flags[0],
            frames.attention_length(max(positions)),
        )
        clock.lap("talker")
        sampled = codes.cpu().numpy()
        for sequence in speaking:
            sequence.take_frame(sampled[sequence.slot], frames.eos)
            self._positions[sequence.slot] = sequence.position
        clock.lap("frames")

    def _warm_up(self) -> None:
        """Run every attention length the decode can use, then whole utterances alone and in a full batch."""
        rt = self._rt
        try:
            with torch.inference_mode():
                frames = rt.frames
                idle = torch.zeros(self.max_batch, dtype=torch.bool, device=frames.device)
                inputs = torch.zeros_like(frames.hidden)
                positions = torch.zeros(self.max_batch, dtype=torch.long, device=frames.device)
                for length in frames.attention_lengths():
                    if rt.compiled:
                        torch.compiler.cudagraph_mark_step_begin()  # type: ignore[no-untyped-call]
                    rt.decode(inputs, positions, idle, length)
            voice = next(iter(rt.specs.values())).voice
            for batch in sorted({1, self.max_batch}):
                requests = [SynthesisRequest(text=WARMUP_TEXT, sampling=SamplingParams(seed=n)) for n in range(batch)]
                sequences = [self.open(request, voice) for request in requests]
                for _ in range(WARMUP_FRAMES):
                    self.step(sequences)
                for sequence in sequences:
                    self.close(sequence)
        except Exception as exc:
            if rt.compiled:
                raise ConfigError(f"QWEN_COMPILE=1: warm-up failed ({exc}); run with QWEN_COMPILE=0") from exc
            raise


def _register(runtime: _Runtime, clone: StoredClone) -> Voice:
    voice = runtime.catalog.voice(clone.voice_id, clone.name)
    runtime.specs = {**runtime.specs, voice.id: VoiceSpec(voice, clone=clone.prompt)}
    return voice
