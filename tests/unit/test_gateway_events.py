"""The engine's observer events carried from a worker or replica to the gateway's observer (`gateway/events.py`)."""

from __future__ import annotations

from media_server.engine.types import Priority
from media_server.gateway.events import EventBuffer, replay
from media_server.observability.metrics import Metrics
from tests.unit.test_metrics import scrape, value


def test_every_event_reaches_the_gateways_observer_as_it_was_observed() -> None:
    buffer = EventBuffer()
    buffer.observe_queue_wait(Priority.BATCH, 0.25)
    buffer.observe_step(0.04, batch_size=2, audio_s=0.16)
    buffer.record_cache_lookup("audio", hit=True)
    buffer.observe_chunk_transit(0.0012)
    metrics = Metrics()
    replay(buffer.drain(), metrics)
    assert buffer.drain() == []
    scraped = scrape(metrics)
    assert value(scraped, "media_server_queue_wait_seconds_sum", priority="batch") == 0.25
    assert value(scraped, "media_server_engine_batch_size_bucket", le="2.0") == 1
    assert value(scraped, "media_server_cache_hits_total", cache="audio") == 1
    assert value(scraped, "media_server_engine_chunk_transit_seconds_sum") == 0.0012
