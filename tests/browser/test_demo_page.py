"""End-to-end checks of the browser demo page against the real server.

A headless Chromium loads `/`, connects over WebRTC and listens to the remote
audio through the page's AnalyserNode (exposed as `window.demo`).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--autoplay-policy=no-user-gesture-required",
    "--disable-features=WebRtcHideLocalIpsWithMdns",
]
TIMEOUT_MS = 30_000
AUDIBLE_RMS = 0.01

SENTENCE = "Hello from the browser test. This sentence should be spoken out loud."
LONG_TEXT = " ".join(
    [
        "This is a deliberately long passage so that the interrupt button has something to cut short.",
        "It keeps going with sentence after sentence about nothing in particular,",
        "describing the weather, the color of the sky, the sound of distant traffic,",
        "and the quiet hum of a server rendering speech in real time for a listener",
        "who is about to lose patience and press the interrupt button at any moment now.",
    ]
    * 3
)

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield browser
        browser.close()


@pytest.fixture
def page(browser: Browser, server_url: str) -> Iterator[Page]:
    context = browser.new_context()
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    page.goto(server_url + "/")
    yield page
    context.close()


def connect(page: Page) -> None:
    voice = page.get_by_test_id("voice")
    expect(voice).to_be_enabled()
    first_voice = voice.locator("option").first.get_attribute("value")
    assert first_voice is not None
    voice.select_option(first_voice)
    page.get_by_test_id("connect").click()
    expect(page.get_by_test_id("state")).to_have_text("connected", timeout=TIMEOUT_MS)
    assert page.evaluate("() => window.demo.state") == "connected"


def speak(page: Page, text: str) -> None:
    page.get_by_test_id("text").fill(text)
    page.get_by_test_id("speak").click()


def wait_for_audio(page: Page) -> None:
    page.wait_for_function(f"() => window.demo.peakLevel > {AUDIBLE_RMS}", timeout=TIMEOUT_MS)


def wait_for_event(page: Page, event_type: str) -> None:
    page.wait_for_function(
        "(type) => window.demo.events.some((e) => e.type === type)", arg=event_type, timeout=TIMEOUT_MS
    )


def test_speak_plays_audio_and_reports_ttfa(page: Page) -> None:
    connect(page)
    speak(page, SENTENCE)

    wait_for_audio(page)
    page.wait_for_function(
        "() => typeof window.demo.lastTtfaMs === 'number' && window.demo.lastTtfaMs > 0", timeout=TIMEOUT_MS
    )
    wait_for_event(page, "done")

    ttfa_ms = page.evaluate("() => window.demo.lastTtfaMs")
    assert isinstance(ttfa_ms, int | float) and ttfa_ms > 0
    expect(page.get_by_test_id("ttfa")).to_contain_text(str(ttfa_ms))
    assert page.evaluate("() => window.demo.peakLevel") > AUDIBLE_RMS
    event_types = page.evaluate("() => window.demo.events.map((e) => e.type)")
    assert "error" not in event_types
    assert event_types.index("audio_start") < event_types.index("done")
    assert isinstance(page.evaluate("() => window.demo.serverTtfaMs"), int | float)


def test_interrupt_cancels_playback(page: Page) -> None:
    connect(page)
    speak(page, LONG_TEXT)
    wait_for_audio(page)

    page.get_by_test_id("interrupt").click()
    wait_for_event(page, "cancelled")

    cancelled = page.evaluate("() => window.demo.events.find((e) => e.type === 'cancelled')")
    assert isinstance(cancelled["played_ms"], int | float)
    event_types = page.evaluate("() => window.demo.events.map((e) => e.type)")
    assert "done" not in event_types
