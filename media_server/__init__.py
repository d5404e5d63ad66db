"""Real-time WebRTC voice media server."""
