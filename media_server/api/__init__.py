"""One-shot HTTP routes (REST, SSE, chunked PCM, voices, health, OpenAPI): thin adapters over the engine.

Long-lived session transports are in `transports/` (WebSockets) and `rtc/` (WebRTC).
"""
