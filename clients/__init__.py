"""Real clients of the media server, shared by the test suite and the load harness: a WebRTC speech
client (`rtc`), a WebSocket client at the byte level (`websocket`), a reader of `/metrics`
(`metrics`), and Pipecat's TTS services driven by its own test utilities (`pipecat_services`, a script
for Pipecat's virtualenv). Not part of the product package: neither `media_server` nor `signaling` imports them."""
