"""The load generators run end to end against the real server and write sane results files.

Smoke only: a 2-peer swarm for a few seconds and a second of each HTTP route. Nothing here
asserts a timing target; that is what `python -m loadtest` and RESULTS.md are for.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from loadtest.__main__ import main

STREAMING_ROUTES = ["speech-wav", "tts-stream", "tts-pcm", "ws"]
# Measure at once, once: the harness's waiting out a busy machine is for real measurements.
NO_WAITING = ["--quiet-wait", "0", "--retries", "0"]


def only_results(out: Path, kind: str) -> dict[str, Any]:
    [path] = out.glob(f"{kind}-*.json")
    assert path.with_suffix(".png").stat().st_size > 10_000
    document: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    assert document["kind"] == kind and document["machine"]["logical_cpus"] >= 1
    return document


def test_rtc_swarm_measures_every_utterance(server_url: str, tmp_path: Path) -> None:
    argv = ["rtc", "--url", server_url, "--peers", "2", "--duration", "3", "--pause", "0.1", "0.2"]
    assert main([*argv, *NO_WAITING, "--out", str(tmp_path)]) == 0

    [level] = only_results(tmp_path, "rtc")["rtc"]["levels"]
    summary = level["summary"]
    assert level["peers"] == 2 and level["mode"] == "conversation"
    assert summary["utterances"] >= 2 and summary["completed"] == summary["utterances"]
    assert {u["peer"] for u in level["utterances"]} == {0, 1}
    for utterance in level["utterances"]:
        assert utterance["outcome"] == "done" and utterance["audio_ms"] > 300
        assert 0 < utterance["server_ttfa_ms"] < utterance["client_ttfa_ms"]
        assert utterance["client_ttfa_corrected_ms"] < utterance["client_ttfa_ms"]
        assert utterance["audible_ms"] > 0 and utterance["max_gap_ms"] >= 20
        assert isinstance(utterance["underrun"], bool) and utterance["playout_stretch_ms"] is not None
    assert level["cpu"]["loadgen"]["cpu_s"] > 0 and level["cpu"]["machine"]["cpu_s"] > 0
    assert level["loadgen_loop_lag"]["n"] > 100


def test_http_load_runs_or_skips_each_route(server_url: str, tmp_path: Path) -> None:
    argv = ["http", "--url", server_url, "--routes", *STREAMING_ROUTES, "--duration", "1"]
    assert main([*argv, "--concurrency", "1", *NO_WAITING, "--out", str(tmp_path)]) == 0

    result = only_results(tmp_path, "http")["http"]
    loaded = {phase["route"] for phase in result["phases"]}
    skipped = {skip["route"]: skip["reason"] for skip in result["skipped"]}
    assert loaded | set(skipped) == set(STREAMING_ROUTES) and not loaded & set(skipped)
    assert "speech-wav" in loaded
    for reason in skipped.values():
        assert "not on this server" in reason
    for phase in result["phases"]:
        summary = phase["summary"]
        assert phase["target"] == "media-server" and phase["concurrency"] == 1
        assert summary["requests"] >= 1 and summary["ok"] == summary["requests"], summary["errors"]
        assert 0 < summary["ttfb"]["p50"] <= summary["total"]["p50"]
        assert summary["audio_s"] > 2 * summary["ok"]
        assert summary["audio_x_realtime"] > 0


def test_calls_load_speaks_on_every_protocol(tmp_path: Path) -> None:
    """A server of its own is started with an AudioSocket listener: one call of each protocol."""
    argv = ["calls", "--calls", "5", "--duration", "3", "--pause", "0.1", "0.2"]
    assert main([*argv, *NO_WAITING, "--out", str(tmp_path)]) == 0

    [path] = tmp_path.glob("calls-*.json")
    document: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    result = document["calls"]
    assert document["server"]["env"]["AUDIOSOCKET_PORT"] and result["calls"] == 5
    assert [p["protocol"] for p in result["protocols"]] == ["twilio", "telnyx", "plivo", "vonage", "audiosocket"]
    for protocol in result["protocols"]:
        assert protocol["calls"] == 1 and protocol["failed_calls"] == 0, protocol["errors"]
        assert protocol["utterances"] >= 1 and protocol["completed"] == protocol["utterances"]
        assert protocol["frames"] > 25 and protocol["wrong_size_frames"] == 0
        assert protocol["server_ttfa"]["n"] == protocol["completed"] and protocol["max_frame_gap"]["max"] >= 20
    assert result["cpu"]["loadgen"]["cpu_s"] > 0
