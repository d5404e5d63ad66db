"""Real clients of the media server, shared by the test suite and the load harness: a WebRTC speech
client (`rtc`), a WebSocket client at the byte level (`websocket`) and a reader of `/metrics`
(`metrics`). Not part of the product package: neither `media_server` nor `signaling` imports them."""
