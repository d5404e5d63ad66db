"""The transport-agnostic session every utterance travels through.

`session.py` holds the `Session` (speak, append, flush, cancel over an engine
and an audio output), `commands.py` the client's messages as typed commands,
`events.py` the typed events a session emits, and `output.py` the audio
output protocol with the one playout queue every output plays from.
Transports (`rtc/`, `transports/`) parse into it and serialize out of it.
"""
