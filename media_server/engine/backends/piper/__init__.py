"""The embedded CPU voice: Piper (VITS on onnxruntime), cut into bounded steps."""

from media_server.engine.backends.piper.backend import PiperBackend

__all__ = ["PiperBackend"]
