"""WebRTC media: the paced speech track and the data-channel session."""
