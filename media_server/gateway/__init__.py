"""Gateway/worker mode: the HTTP/WebRTC server in one light process, the model in a worker process.

`media-server serve --mode gateway` serves exactly what standalone mode does
(the same `build_app` and engine front), with a `RemoteCore` in place of the
in-process `LocalCore`. The gateway never imports torch, onnxruntime, piper,
webrtcvad or rubberband: the worker (`python -m media_server.gateway.worker`,
started and supervised by the gateway) holds the model. It is started on first
use (or at start with `PRELOAD_MODEL`), restarted when it dies or is stuck, and
stopped after `IDLE_TIMEOUT` seconds unused, which gives the model's memory (GPU
memory included) back.

- `wire`: the IPC framing and message codecs, and the error code table.
- `events`: the engine's observer events, carried from the worker to the gateway's metrics.
- `supervisor`: the worker process's lifecycle.
- `remote`: `RemoteCore` and its `RemoteStream`, the engine core over the wire.
- `worker`: the worker process's entry point.
"""
