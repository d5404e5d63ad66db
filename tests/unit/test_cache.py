"""The audio LRU: keys, what may be cached, byte bound, recency, counters and threads."""

from __future__ import annotations

import threading
from dataclasses import replace

import numpy as np
import pytest

from media_server.engine.cache import AudioCache, CacheKey, CacheStats
from media_server.engine.types import SamplingParams, Speech, SynthesisRequest, Voice, WordTiming

RATE = 22050


def key(text: str = "hello", backend: str = "piper", sampling: SamplingParams | None = None) -> CacheKey:
    return CacheKey(text, "joe", "en", 1.0, sampling or SamplingParams(), backend)


def chunk(samples: int, value: int = 1, words: tuple[WordTiming, ...] = ()) -> Speech:
    return Speech(np.full(samples, value, dtype=np.int16), words)


def test_a_stored_utterance_comes_back_read_only_and_unaliased() -> None:
    cache = AudioCache(max_bytes=10_000, deterministic_backends={"piper"})
    said = (WordTiming("hello", 0.0, 0.2),)
    first, second = chunk(100, 3, said), chunk(50, 4)
    assert cache.put(key(), [first, second], RATE)
    first.pcm[:] = 9
    audio = cache.get(key())
    assert audio is not None
    assert audio.sample_rate == RATE
    assert [c.pcm.tolist() for c in audio.chunks] == [[3] * 100, [4] * 50]
    assert [c.words for c in audio.chunks] == [said, ()]
    assert audio.nbytes == 300
    with pytest.raises(ValueError, match="read-only"):
        audio.chunks[0].pcm[0] = 1


def test_keys_cover_everything_that_shapes_the_audio() -> None:
    request = SynthesisRequest(text="Hello 1", speed=1, sampling=SamplingParams(temperature=0.7, seed=3))
    voice = Voice(id="joe", name="Joe", backend="qwen", languages=("en",), sample_rate=24000)
    built = CacheKey.for_request(request, voice, text="Hello one", language="en", written="Hello 1")
    assert built == CacheKey("Hello one", "joe", "en", 1.0, SamplingParams(temperature=0.7, seed=3), "qwen", "Hello 1")
    variants = {
        replace(built, speed=1.5),
        replace(built, voice="amy"),
        replace(built, language="fr"),
        replace(built, written="Hello one"),  # the same sound, other words to time
    }
    assert len(variants | {built}) == 5
    assert built != replace(built, sampling=SamplingParams(temperature=0.7, seed=4))
    assert built != replace(built, backend="piper")


@pytest.mark.parametrize(
    ("backend", "sampling", "cacheable"),
    [
        ("piper", SamplingParams(), True),
        ("piper", SamplingParams(temperature=0.8), True),
        ("qwen", SamplingParams(), False),
        ("qwen", SamplingParams(temperature=0.8, top_p=0.9), False),
        ("qwen", SamplingParams(temperature=0.8, seed=42), True),
        ("qwen", SamplingParams(temperature=0.0), True),
        ("qwen", SamplingParams(temperature=0.8, top_k=1), True),
    ],
)
def test_what_may_be_cached(backend: str, sampling: SamplingParams, cacheable: bool) -> None:
    cache = AudioCache(max_bytes=10_000, deterministic_backends={"piper"})
    assert cache.cacheable(key(backend=backend, sampling=sampling)) is cacheable
    assert cache.put(key(backend=backend, sampling=sampling), [chunk(10)], RATE) is cacheable


def test_a_zero_budget_caches_nothing() -> None:
    cache = AudioCache(max_bytes=0, deterministic_backends={"piper"})
    assert not cache.cacheable(key())
    assert not cache.put(key(), [chunk(10)], RATE)


def test_least_recently_used_is_evicted_to_stay_under_the_byte_bound() -> None:
    cache = AudioCache(max_bytes=1000, deterministic_backends={"piper"})
    for name in ("a", "b", "c"):
        assert cache.put(key(name), [chunk(150)], RATE)
    assert cache.get(key("a")) is not None
    assert cache.put(key("d"), [chunk(200)], RATE)
    assert cache.get(key("b")) is None
    assert all(cache.get(key(name)) is not None for name in ("a", "c", "d"))
    assert cache.stats() == CacheStats(hits=4, misses=1, evictions=1, entries=3, bytes=1000, max_bytes=1000)


def test_an_utterance_larger_than_the_cache_is_not_stored() -> None:
    cache = AudioCache(max_bytes=1000, deterministic_backends={"piper"})
    assert cache.put(key("small"), [chunk(100)], RATE)
    assert not cache.put(key("huge"), [chunk(400), chunk(101)], RATE)
    assert cache.get(key("small")) is not None
    assert cache.stats().bytes == 200


def test_storing_a_key_again_replaces_it() -> None:
    cache = AudioCache(max_bytes=1000, deterministic_backends={"piper"})
    cache.put(key(), [chunk(100)], RATE)
    cache.put(key(), [chunk(300)], RATE)
    stats = cache.stats()
    assert (stats.entries, stats.bytes, stats.evictions) == (1, 600, 0)


def test_negative_budget_is_refused() -> None:
    with pytest.raises(ValueError, match="max_bytes"):
        AudioCache(max_bytes=-1)


def test_threads_share_it_without_losing_count() -> None:
    cache = AudioCache(max_bytes=40 * 200, deterministic_backends={"piper"})
    rounds, workers = 300, 4
    start = threading.Barrier(workers)

    def work(worker: int) -> None:
        start.wait()
        for i in range(rounds):
            name = f"{(worker * 7 + i) % 60}"
            if cache.get(key(name)) is None:
                cache.put(key(name), [chunk(100)], RATE)

    threads = [threading.Thread(target=work, args=(w,)) for w in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    stats = cache.stats()
    assert stats.hits + stats.misses == rounds * workers
    assert stats.entries <= 40
    assert stats.bytes == stats.entries * 200
