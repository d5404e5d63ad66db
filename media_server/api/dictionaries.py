"""Pronunciation dictionary routes in ElevenLabs' shape, and `GET /v1/ssml` (what SSML the server speaks).

- `POST /v1/pronunciation-dictionaries/add-from-rules`: JSON `{name, rules,
  description?}`, each rule `{string_to_replace, type: "alias", alias}` or
  `{string_to_replace, type: "phoneme", phoneme, alphabet: "ipa"}`
  (`case_sensitive`, `word_boundaries` optional, both true by default);
- `POST /v1/pronunciation-dictionaries/add-from-file`: multipart, a PLS `file`,
  `name`, `description?`;
- `GET /v1/pronunciation-dictionaries`: the stored ones (no rules);
- `GET /v1/pronunciation-dictionaries/{id}`: one, with its rules;
- `DELETE /v1/pronunciation-dictionaries/{id}`.
A request names dictionaries with `pronunciation_dictionary_locators`
(`engine/parameters.py`); storage and limits are `engine/dictionaries.py`'s.
"""

from __future__ import annotations

from aiohttp import web

from media_server.api.app_keys import ENGINE
from media_server.api.body import json_object, optional, required
from media_server.api.multipart import read_form
from media_server.engine.dictionaries import Dictionary
from media_server.engine.types import PHONEMES
from media_server.errors import InvalidRequest
from media_server.text.lexicon import rules_from_json, rules_from_pls
from media_server.text.ssml import SUPPORTED

PREFIX = "/v1/pronunciation-dictionaries"
FILE_FIELDS = ("name", "description", "workspace_access")


async def add_from_rules(request: web.Request) -> web.Response:
    body = await json_object(request)
    rules = rules_from_json(body.get("rules"))
    name = required(body, "name", str)
    dictionary = await request.app[ENGINE].dictionaries.add(name, optional(body, "description", str), rules)
    return _created(dictionary)


async def add_from_file(request: web.Request) -> web.Response:
    upload, fields = await read_form(request, "file", FILE_FIELDS)
    if upload is None:
        raise InvalidRequest("file: required, a PLS lexicon")
    try:
        document = upload.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidRequest(f"file: byte {exc.start} is not UTF-8") from None
    rules = rules_from_pls(document, request.app[ENGINE].dictionaries.max_rules)
    name = fields.get("name") or ""
    dictionary = await request.app[ENGINE].dictionaries.add(name, fields.get("description"), rules)
    return _created(dictionary)


def _created(dictionary: Dictionary) -> web.Response:
    return web.json_response(dictionary.summary())


async def list_dictionaries(request: web.Request) -> web.Response:
    dictionaries = request.app[ENGINE].dictionaries.all()
    return web.json_response(
        {"pronunciation_dictionaries": [d.summary() for d in dictionaries], "has_more": False, "next_cursor": None}
    )


async def get_dictionary(request: web.Request) -> web.Response:
    return web.json_response(request.app[ENGINE].dictionaries.get(request.match_info["dictionary_id"]).to_json())


async def delete_dictionary(request: web.Request) -> web.Response:
    await request.app[ENGINE].dictionaries.delete(request.match_info["dictionary_id"])
    return web.json_response({"status": "ok"})


async def ssml(request: web.Request) -> web.Response:
    voices = request.app[ENGINE].voices()
    return web.json_response(
        {
            "elements": SUPPORTED,
            "unknown_elements": "dropped; their text is spoken",
            "phonemes": {
                "voices": [voice.id for voice in voices if PHONEMES in voice.capabilities],
                "others": "say the element's text",
            },
        }
    )


def add_routes(app: web.Application) -> None:
    app.router.add_post(f"{PREFIX}/add-from-rules", add_from_rules)
    app.router.add_post(f"{PREFIX}/add-from-file", add_from_file)
    app.router.add_get(PREFIX, list_dictionaries)
    app.router.add_get(f"{PREFIX}/{{dictionary_id}}", get_dictionary)
    app.router.add_delete(f"{PREFIX}/{{dictionary_id}}", delete_dictionary)
    app.router.add_get("/v1/ssml", ssml)
