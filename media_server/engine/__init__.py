"""Text in, PCM chunks out: the synthesis engine. Knows nothing of HTTP or WebRTC."""
