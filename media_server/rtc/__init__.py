"""WebRTC media: the paced speech track and a peer's session over its data channel."""
