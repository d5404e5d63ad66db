"""Long-lived session transports over WebSockets: `/ws/tts` (the data-channel protocol, audio as binary
messages) and `/ws/telephony` (Twilio Media Streams), with the socket output and guard they share.

A transport parses its wire messages into the session's commands and writes
the session's events in its own protocol; the session does the rest. The
WebRTC transport (the peer and its track) is `rtc/`.
"""
