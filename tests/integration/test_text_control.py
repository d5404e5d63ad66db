"""SSML, pronunciation dictionaries and mixed-language text against a real server: REST routes, the WebSocket
session, dictionaries kept across a restart, and property-based input that must never get a 5xx."""

from __future__ import annotations

import io
import wave
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.integration.test_fuzz import FUZZ as WHOLE_SERVER_FUZZ
from tests.integration.test_websocket import WsClient
from tests.server import RunningServer, start_server
from tests.ssml_input import SSML_DOCUMENTS

RATE = 22050
NGINX = {"string_to_replace": "Nginx", "type": "alias", "alias": "engine x"}
PLS = """<?xml version="1.0" encoding="UTF-8"?>
<lexicon version="1.0" xmlns="http://www.w3.org/2005/01/pronunciation-lexicon" alphabet="ipa" xml:lang="en-US">
  <lexeme><grapheme>tomato</grapheme><phoneme>təˈmɑːtoʊ</phoneme></lexeme>
</lexicon>"""
FUZZ = settings(WHOLE_SERVER_FUZZ, max_examples=60)


@pytest.fixture(scope="module")
def dictionary_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("dictionaries")


@pytest.fixture(scope="module")
def text_server(dictionary_dir: Path) -> Iterator[RunningServer]:
    server = start_server({"DICTIONARY_DIR": str(dictionary_dir), "AUDIO_CACHE_BYTES": "0"})
    yield server
    server.stop()


async def tts(http: aiohttp.ClientSession, **body: Any) -> bytes:
    async with http.post("/tts", json=body) as response:
        assert response.status == 200, await response.text()
        with wave.open(io.BytesIO(await response.read())) as wav:
            frames: bytes = wav.readframes(wav.getnframes())
            return frames


async def refusal(http: aiohttp.ClientSession, path: str, body: dict[str, Any]) -> tuple[int, dict[str, str]]:
    async with http.post(path, json=body) as response:
        error: dict[str, str] = (await response.json())["error"]
        return response.status, error


@pytest.mark.asyncio
async def test_ssml_over_rest_breaks_and_refusals(text_server: RunningServer) -> None:
    async with aiohttp.ClientSession(text_server.url) as http:
        alone = await tts(http, text="Hello there.")
        both = await tts(http, text='<speak>Hello there.<break time="1s"/>Hello there.</speak>', ssml=True)
        assert len(both) == 2 * len(alone) + 2 * RATE  # bytes: 16-bit samples
        async with http.post(
            "/v1/audio/speech",
            json={
                "model": "tts-1",
                "voice": "alloy",
                "input": "<speak>Hi <break/> you</speak>",
                "ssml": True,
                "response_format": "wav",
            },  # fmt: skip
        ) as response:
            assert response.status == 200
        assert await refusal(http, "/tts", {"text": "<speak>Hi <break time='x'/></speak>", "ssml": True}) == (
            400,
            {"code": "invalid_ssml", "message": "ssml: line 1, column 11: break time 'x' is not like 500ms or 2s"},
        )
        status, error = await refusal(http, "/tts/pcm", {"text": "<speak>Hi", "ssml": "yes"})
        assert (status, error["message"]) == (400, "ssml: 'yes' is not true or false")
        status, error = await refusal(http, "/tts/stream", {"text": "Hi", "pronunciation_dictionary_locators": [{}]})
        assert error["message"].startswith("pronunciation_dictionary_locators[0].pronunciation_dictionary_id: required")
        async with http.get("/v1/ssml") as response:
            supported = await response.json()
        assert {"speak", "break", "prosody", "say-as", "phoneme", "voice", "sub", "p", "s", "lang"} <= set(
            supported["elements"]
        )
        async with http.get("/v1/voices") as response:
            [voice] = (await response.json())["voices"]
        assert voice["capabilities"] == ["ipa_phonemes"] and supported["phonemes"]["voices"] == [voice["id"]]


@pytest.mark.asyncio
async def test_dictionaries_from_rules_and_pls_are_used_listed_and_deleted(text_server: RunningServer) -> None:
    async with aiohttp.ClientSession(text_server.url) as http:
        async with http.post(
            "/v1/pronunciation-dictionaries/add-from-rules", json={"name": "tech", "rules": [NGINX]}
        ) as response:
            assert response.status == 200, await response.text()
            created = await response.json()
        locator = {"pronunciation_dictionary_id": created["id"], "version_id": created["version_id"]}
        ruled = await tts(http, text="I run Nginx.", pronunciation_dictionary_locators=[locator])
        assert ruled == await tts(http, text="I run engine x.")
        form = aiohttp.FormData()
        form.add_field("name", "food")
        form.add_field("file", PLS.encode(), filename="food.pls", content_type="application/pls+xml")
        async with http.post("/v1/pronunciation-dictionaries/add-from-file", data=form) as response:
            assert response.status == 200, await response.text()
            food = await response.json()
        async with http.get(f"/v1/pronunciation-dictionaries/{food['id']}") as response:
            assert (await response.json())["rules"][0]["phoneme"] == "təˈmɑːtoʊ"
        async with http.get("/v1/pronunciation-dictionaries") as response:
            listed = {d["id"] for d in (await response.json())["pronunciation_dictionaries"]}
        assert {created["id"], food["id"]} <= listed
        async with http.delete(f"/v1/pronunciation-dictionaries/{food['id']}") as response:
            assert response.status == 200
        gone = [{"pronunciation_dictionary_id": food["id"]}]
        status, error = await refusal(http, "/tts", {"text": "A tomato.", "pronunciation_dictionary_locators": gone})
        assert (status, error["code"]) == (404, "unknown_dictionary")
        status, error = await refusal(
            http, "/v1/pronunciation-dictionaries/add-from-rules", {"name": "x", "rules": [{}]}
        )
        assert (status, error["message"]) == (400, "rules[0].type: None is not one of alias, phoneme")


@pytest.mark.asyncio
async def test_dictionaries_are_kept_across_a_restart(text_server: RunningServer, dictionary_dir: Path) -> None:
    async with aiohttp.ClientSession(text_server.url) as http:
        async with http.post(
            "/v1/pronunciation-dictionaries/add-from-rules", json={"name": "kept", "rules": [NGINX]}
        ) as response:
            kept = await response.json()
    again = start_server({"DICTIONARY_DIR": str(dictionary_dir), "PRONUNCIATION_DICTIONARIES": kept["id"]})
    try:
        async with aiohttp.ClientSession(again.url) as http:
            async with http.get(f"/v1/pronunciation-dictionaries/{kept['id']}") as response:
                assert (await response.json())["version_id"] == kept["version_id"]
            # Server-wide: applied without being named.
            assert await tts(http, text="I run Nginx.") == await tts(http, text="I run engine x.")
    finally:
        again.stop()


@pytest.mark.asyncio
async def test_a_session_speaks_ssml_and_a_foreign_greeting_does_not_refuse_the_reply(
    text_server: RunningServer,
) -> None:
    async with aiohttp.ClientSession() as http, http.ws_connect(text_server.url + "/ws/tts") as ws:
        client = WsClient(ws)
        await client.send(
            {"type": "speak", "id": "s1", "ssml": True, "text": '<speak>One.<break time="2s"/>Two.</speak>'}
        )
        done = await client.until("done")
        assert done["id"] == "s1" and done["audio_ms"] > 2000
        for token in ["Bonjour! ", "Thanks ", "for ", "waiting, ", "here ", "is ", "your ", "answer. "]:
            await client.send({"type": "append", "text": token})
        await client.send({"type": "flush"})
        done = await client.until("done")
        await client.send({"type": "append", "text": "<speak>x</speak>", "ssml": True})
        error = await client.until("error")
    kinds = [event["type"] for _, event in client.events]
    assert kinds.count("error") == 1 and error["message"].startswith("ssml: SSML is spoken whole")
    started = [event for _, event in client.events if event["type"] == "started"]
    assert [event["language"] for event in started] == ["en", "en"]
    assert done["audio_ms"] > 1500


RULE_VALUES = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.text(max_size=12)
    | st.sampled_from(["alias", "phoneme", "ipa", "təˈ", "x-sampa"])
)
RULES = st.lists(
    st.dictionaries(
        st.sampled_from(
            ["string_to_replace", "type", "alias", "phoneme", "alphabet", "case_sensitive", "word_boundaries"]
        ),
        RULE_VALUES,
    ),
    max_size=4,
)  # fmt: skip


@pytest.mark.asyncio
@FUZZ
@given(document=SSML_DOCUMENTS, route=st.sampled_from(["/tts", "/tts/pcm"]))
async def test_no_ssml_document_gets_a_server_error(text_server: RunningServer, document: str, route: str) -> None:
    async with (
        aiohttp.ClientSession(text_server.url) as http,
        http.post(route, json={"text": document, "ssml": True}) as r,
    ):
        await r.read()
        assert r.status < 500, (document, r.status)


@pytest.mark.asyncio
@FUZZ
@given(rules=RULES, text=st.text(max_size=30) | st.just("Nginx tomato"))
async def test_no_dictionary_gets_a_server_error(
    text_server: RunningServer, rules: list[dict[str, Any]], text: str
) -> None:
    async with aiohttp.ClientSession(text_server.url) as http:
        async with http.post(
            "/v1/pronunciation-dictionaries/add-from-rules", json={"name": "fuzz", "rules": rules}
        ) as r:
            body = await r.json()
            assert r.status < 500, (rules, body)
        if r.status != 200:
            return
        locator = {"pronunciation_dictionary_id": body["id"]}
        async with http.post("/tts", json={"text": text, "pronunciation_dictionary_locators": [locator]}) as r:
            await r.read()
            assert r.status < 500, (rules, text, r.status)
        async with http.delete(f"/v1/pronunciation-dictionaries/{body['id']}") as r:
            assert r.status == 200
