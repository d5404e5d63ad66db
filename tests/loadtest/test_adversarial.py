"""The adversarial load test: a few seconds against a real server it starts, and its parts on their own.

The run is short, so the server is started with short deadlines (`BODY_TIMEOUT`, `SEND_TIMEOUT`)
for the slow bodies and the non-reading clients to meet them within it. Nothing here asserts a
timing target or the memory bound: that is what the 2-minute run and RESULTS.md are for.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from clients.rtc import bare_offer
from loadtest.__main__ import main
from loadtest.adversarial import AdversarialConfig, Memory, judge
from loadtest.answers import CUT_SHORT, NO_ANSWER, server_errors, status_class, status_key
from loadtest.hostile_input import (
    MESSAGE_DEPTH,
    OVERSIZE_MESSAGE,
    crowded_candidates,
    malformed,
    refused_candidates,
    with_candidates,
)
from loadtest.hostile_requests import own_candidates
from signaling.errors import BadOffer
from signaling.offer import CandidatePolicy, screen_offer

MAX_MESSAGE_BYTES = 64 * 1024  # the server's default MAX_MESSAGE_BYTES
SHORT_DEADLINES = ["--env", "BODY_TIMEOUT=2", "--env", "SEND_TIMEOUT=2"]
NO_WAITING = ["--quiet-wait", "0", "--retries", "0"]


def test_only_admission_refusals_are_5xx_that_pass_and_a_body_cut_short_fails() -> None:
    assert status_key(503, "busy") == "503 busy" and status_class("503 busy") == "503 busy"
    assert status_class(status_key(503, "too_many_peers")) == "5xx"
    assert status_class(status_key(500)) == "5xx" and status_class(status_key(400, "invalid_request")) == "4xx"
    assert status_class(status_key(0)) == NO_ANSWER
    assert status_class(status_key(200, CUT_SHORT)) == CUT_SHORT
    assert server_errors({"/tts": {"200": 5, "503 busy": 9}, "/rtc/offer": {"500": 1, "502 x": 2}}) == 3
    assert server_errors({"/v1/audio/speech": {"200": 5, status_key(200, CUT_SHORT): 1}}) == 1


def test_the_verdict_names_every_failure() -> None:
    config = AdversarialConfig(max_rss_growth_mib=100)
    fine = Memory(300.0, 350.0, 320.0, 50.0, [])
    assert judge(config, None, None, {"/tts": {"400": 3, "503 busy": 2}}, {"/tts": {"503": 2}}, fine, True, []) == []

    grown = Memory(300.0, 420.0, 410.0, 120.0, [])
    failures = judge(
        config, None, "ConnectionError: offer refused", {"/tts": {"500": 1}}, {"/tts": {"500": 1}}, grown, False, ["x"]
    )
    assert len(failures) == 6, failures
    unmeasured = Memory(None, None, None, None, [])
    assert "not measured" in judge(config, None, None, {}, None, unmeasured, True, [])[0]


def test_malformed_messages_fit_the_message_limit_except_the_oversize_one() -> None:
    for text in malformed("message", message=True).values():
        assert len(text.encode()) < MAX_MESSAGE_BYTES
    assert "[" * MESSAGE_DEPTH in malformed("message", message=True).values()
    assert len(OVERSIZE_MESSAGE[1]) > MAX_MESSAGE_BYTES
    for route in ("/tts", "/v1/audio/speech", "/rtc/offer"):
        bodies = malformed(route, message=False)
        assert len(bodies) == 4 and all(len(body) < 256 * 1024 for body in bodies.values())
        assert any(body.endswith("NaN}") for body in bodies.values())


@pytest.mark.asyncio
async def test_crowded_offers_are_over_the_cap_and_refused_candidates_are_taken_out() -> None:
    pc, sdp = await bare_offer()
    await pc.close()
    policy = CandidatePolicy(allow_private=True)
    with pytest.raises(BadOffer, match="over the limit"):
        screen_offer(with_candidates(sdp, crowded_candidates(300)), policy)
    extra = refused_candidates(policy.max_candidates - 1 - own_candidates(sdp))
    screened = screen_offer(with_candidates(sdp, extra), policy)
    assert own_candidates(with_candidates(sdp, extra)) == policy.max_candidates - 1
    assert own_candidates(screened) == own_candidates(sdp)


def test_a_short_adversarial_run_gets_no_5xx(tmp_path: Path) -> None:
    argv = ["adversarial", "--spawn", *SHORT_DEADLINES, "--duration", "6", "--sessions", "2", "--batch-loops", "4"]
    assert main([*argv, *NO_WAITING, "--out", str(tmp_path)]) in (0, 1)  # 1: failed; the checks below say why

    [path] = tmp_path.glob("adversarial-*.json")
    assert path.with_suffix(".png").stat().st_size > 10_000
    document: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    run = document["adversarial"]
    assert run["server_errors"] == [] and server_errors(run["client_statuses"]) == 0, run["client_statuses"]
    assert all(s[0] != "5" or s == "503" for c in run["server_statuses"].values() for s in c), run["server_statuses"]
    assert run["attack_errors"] == [] and run["server_alive"] and run["live_error"] is None
    assert run["passed"] == (not run["failures"])

    live = run["live"]["summary"]
    assert live["utterances"] >= 2 and live["server_underruns"] is not None
    rss = run["server_rss"]
    assert len(rss["samples"]) >= 5 and rss["start_mib"] > 0 and rss["growth_mib"] >= 0

    for where, outcomes in run["malformed"]["outcomes"].items():
        assert all(o.startswith(("400", "413", "error")) for o in outcomes), (where, outcomes)
    assert run["malformed"]["rounds"] >= 2
    [crowded, screened] = run["candidates"]["offers"].values()
    assert set(crowded) == {"400"} and set(screened) == {"200"} and set(run["candidates"]["hang_ups"]) == {"200"}
    assert run["slow_bodies"]["outcomes"].get("408", 0) >= 4  # BODY_TIMEOUT=2: each of the 4 clients, at least once
    assert run["non_readers"]["connections"] >= 4 and run["telephony"]["messages_sent"] > 100
    assert run["rate_probe"]["rate_limited_events"] > 0
    assert sum(run["batch"]["statuses"].values()) >= 1
