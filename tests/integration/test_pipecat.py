"""Pipecat's `CartesiaTTSService` and `OpenAITTSService`, unchanged, against this server, through Pipecat's own
test utilities (`clients/pipecat_services.py`, run in the Pipecat virtualenv `make test` builds: every
Pipecat release pins protobuf<7, below the protobuf this project locks)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

PIPECAT_PYTHON = Path(os.environ.get("PIPECAT_PYTHON", ".venv-pipecat/bin/python"))
CLIENT = Path(__file__).parent.parent.parent / "clients" / "pipecat_services.py"


@pytest.fixture(scope="module")
def pipecat(server_url: str) -> dict[str, Any]:
    if not PIPECAT_PYTHON.exists():
        pytest.skip(f"no Pipecat virtualenv at {PIPECAT_PYTHON}: `make test` builds it")
    run = subprocess.run(
        [str(PIPECAT_PYTHON), str(CLIENT), server_url], capture_output=True, text=True, timeout=90, check=True
    )
    result: dict[str, Any] = json.loads(run.stdout.strip().splitlines()[-1])
    return result


def test_cartesia_service_gets_audio_and_monotonic_word_timestamps(pipecat: dict[str, Any]) -> None:
    said = pipecat["cartesia"]
    assert said["audio_s"] > 2.5
    assert said["words"] == "Hello from Pipecat. Word timestamps arrive with the audio.".split()
    assert said["pts"] == sorted(said["pts"]) and len(set(said["pts"])) == len(said["pts"])


def test_an_interruption_cancels_the_context_and_the_server_stops(pipecat: dict[str, Any]) -> None:
    # About five minutes of text, interrupted 1.5 s after it was sent. How much audio came before is the
    # machine's speed; what matters is that the server then stops: a second after the interruption has
    # settled, with the connection still open, its engine makes nothing (it makes tens of seconds of audio a
    # second while it runs).
    interrupted = pipecat["interrupted"]
    assert interrupted["audio_s"] > 0
    assert interrupted["watched_while_open"]
    assert interrupted["made_after_s"] == 0.0, interrupted["made_after_s"]


def test_openai_service_with_our_base_url(pipecat: dict[str, Any]) -> None:
    assert pipecat["openai"]["audio_s"] > 2.5
