"""Token buckets, the per-client table's memory bound, and the settings that switch them on."""

from __future__ import annotations

import pytest

from media_server.config import Settings
from media_server.errors import RateLimited
from media_server.ratelimit import ClientBuckets, MessageRate, TokenBucket


def test_a_bucket_gives_its_burst_then_one_token_per_period() -> None:
    bucket = TokenBucket(rate_per_s=2.0, burst=3, now=100.0)
    assert [bucket.take(100.0) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert bucket.take(100.0) == pytest.approx(0.5)
    assert bucket.take(100.25) == pytest.approx(0.25)
    assert bucket.take(100.5) == 0.0
    assert bucket.take(200.0) == 0.0  # refilled, but never beyond the burst
    assert [bucket.take(200.0) for _ in range(3)][-1] == pytest.approx(0.5)


def test_clients_have_separate_buckets() -> None:
    buckets = ClientBuckets(per_minute=60, burst=1)
    assert buckets.take("a", now=0.0) == 0.0
    assert buckets.take("a", now=0.0) == pytest.approx(1.0)
    assert buckets.take("b", now=0.0) == 0.0


def test_the_client_table_is_bounded() -> None:
    buckets = ClientBuckets(per_minute=60, burst=1, max_clients=100)
    for client in range(1000):
        buckets.take(f"address:{client}", now=0.0)
    assert len(buckets) == 100
    assert buckets.take("address:999", now=0.0) > 0  # the most recent clients are the ones kept


def test_a_flood_is_reported_once_per_run_of_drops() -> None:
    rate = MessageRate(per_second=1000.0)
    admitted = 0
    reports = 0
    for _ in range(5000):
        try:
            admitted += rate.admit()
        except RateLimited as exc:
            reports += 1
            assert exc.retry_after_s is not None and exc.retry_after_s > 0
    assert reports < admitted - 1000 + 2  # at most one report per message admitted after the burst, plus one


def test_no_limit_when_zero() -> None:
    rate = MessageRate(per_second=0)
    assert all(rate.admit() for _ in range(10_000))


def test_lists_are_comma_separated_settings() -> None:
    settings = Settings.from_env(
        {"API_KEYS": "one, two,,three ", "ALLOWED_ORIGINS": "https://a.example", "TURN_URLS": "", "TURN_TTL": "60"}
    )
    assert settings.api_keys == ("one", "two", "three")
    assert settings.allowed_origins == ("https://a.example",)
    assert settings.turn_urls == () and settings.turn_ttl == 60
    assert Settings().rate_limit_per_minute == 0 and Settings().max_messages_per_second > 0
