"""Qwen3-TTS (`TTS_BACKEND=qwen`): our own step loop over the model's talker and code predictor.

Importing this package needs the `qwen` extra (torch, qwen-tts); `backend.py` says so with an install hint.
"""
