"""Stored pronunciation dictionaries: kept in memory, persisted one JSON file each, bounded in count and size.

A dictionary has an id, a name, a version id and its rules
(`media_server.text.lexicon`). Requests name dictionaries by
`DictionaryLocator` (id, and optionally the version meant: a version that is
not the stored one is refused, so a caller never gets rules it did not ask
for); the ids in `PRONUNCIATION_DICTIONARIES` apply to every request, after
the request's own. Files live in `DICTIONARY_DIR`, written atomically (a
temporary file renamed over the old one), read back at start (an unreadable
one is skipped with a warning). `MAX_DICTIONARIES` dictionaries of at most
`MAX_DICTIONARY_RULES` rules each may be stored.

File writes happen in a worker thread; the in-memory table changes on the
event loop, under one lock, so two uploads cannot both take the last place.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import secrets
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from media_server.config import Settings
from media_server.engine.types import DictionaryLocator
from media_server.errors import ConfigError, InvalidRequest, TooManyDictionaries, UnknownDictionary
from media_server.text.lexicon import Lexicon, Rule, rules_from_json

log = logging.getLogger(__name__)

MAX_NAME_CHARS = 100
MAX_DESCRIPTION_CHARS = 1000
MAX_LOCATORS = 3
"""Dictionaries one request may name (ElevenLabs' limit)."""


@dataclass(frozen=True, eq=False)
class Dictionary:
    """One version of a dictionary (compared by identity: a stored version never changes)."""

    id: str
    name: str
    description: str | None
    version_id: str
    created_at: int
    """Unix time."""
    rules: tuple[Rule, ...]

    def summary(self) -> dict[str, Any]:
        """What ElevenLabs' routes answer about a dictionary."""
        return {
            "id": self.id,
            "name": self.name,
            "description": self.description,
            "version_id": self.version_id,
            "latest_version_id": self.version_id,
            "version_rules_num": len(self.rules),
            "latest_version_rules_num": len(self.rules),
            "creation_time_unix": self.created_at,
            "created_by": "media-server",
            "permission_on_resource": "admin",
        }

    def to_json(self) -> dict[str, Any]:
        return self.summary() | {"rules": [rule.to_json() for rule in self.rules]}


class DictionaryStore:
    def __init__(self, settings: Settings) -> None:
        self.directory = Path(settings.dictionary_dir).expanduser()
        self.max_dictionaries = settings.max_dictionaries
        self.max_rules = settings.max_dictionary_rules
        self._server_wide = settings.pronunciation_dictionaries
        self._dictionaries: dict[str, Dictionary] = {}
        self._lock = asyncio.Lock()

    def load(self) -> None:
        """Read the stored dictionaries (blocking: call from a thread); ConfigError for a server-wide id not found."""
        for path in sorted(self.directory.glob("*.json")) if self.directory.is_dir() else ():
            try:
                data = json.loads(path.read_text(encoding="utf-8"))
                rules = tuple(rules_from_json(data["rules"]))
                self._dictionaries[data["id"]] = Dictionary(
                    data["id"], data["name"], data.get("description"), data["version_id"], data["created_at"], rules
                )
            except (OSError, ValueError, KeyError, TypeError, InvalidRequest) as exc:
                log.warning("skipping unreadable pronunciation dictionary %s: %s", path, exc)
        missing = [name for name in self._server_wide if name not in self._dictionaries]
        if missing:
            raise ConfigError(f"PRONUNCIATION_DICTIONARIES: no stored dictionary has the id {', '.join(missing)}")

    def all(self) -> list[Dictionary]:
        return sorted(self._dictionaries.values(), key=lambda d: (d.created_at, d.id))

    def get(self, dictionary_id: str) -> Dictionary:
        dictionary = self._dictionaries.get(dictionary_id)
        if dictionary is None:
            raise UnknownDictionary(f"pronunciation_dictionary_id: no dictionary {dictionary_id!r} is stored")
        return dictionary

    async def add(self, name: str, description: str | None, rules: Sequence[Rule]) -> Dictionary:
        if not name.strip() or len(name) > MAX_NAME_CHARS:
            raise InvalidRequest(f"name: must be 1-{MAX_NAME_CHARS} characters")
        if description is not None and len(description) > MAX_DESCRIPTION_CHARS:
            raise InvalidRequest(f"description: {len(description)} characters is over {MAX_DESCRIPTION_CHARS}")
        if len(rules) > self.max_rules:
            raise InvalidRequest(
                f"rules: {len(rules)} rules is over the limit of {self.max_rules} (MAX_DICTIONARY_RULES)"
            )
        dictionary = Dictionary(
            id=secrets.token_hex(10),
            name=name,
            description=description,
            version_id=secrets.token_hex(10),
            created_at=int(time.time()),
            rules=tuple(rules),
        )
        async with self._lock:
            if len(self._dictionaries) >= self.max_dictionaries:
                raise TooManyDictionaries(
                    f"pronunciation dictionaries: {len(self._dictionaries)} are stored, the limit "
                    f"(MAX_DICTIONARIES); delete one first"
                )
            await asyncio.to_thread(self._write, dictionary)
            self._dictionaries[dictionary.id] = dictionary
        return dictionary

    async def delete(self, dictionary_id: str) -> None:
        async with self._lock:
            self.get(dictionary_id)
            if dictionary_id in self._server_wide:
                raise InvalidRequest(
                    f"pronunciation_dictionary_id: {dictionary_id!r} is applied server-wide "
                    "(PRONUNCIATION_DICTIONARIES); take it out of that setting first"
                )
            await asyncio.to_thread((self.directory / f"{dictionary_id}.json").unlink, missing_ok=True)
            del self._dictionaries[dictionary_id]

    def lexicon(self, locators: Sequence[DictionaryLocator]) -> Lexicon:
        """The rules of the dictionaries `locators` name, then the server-wide ones; raises UnknownDictionary."""
        if len(locators) > MAX_LOCATORS:
            raise InvalidRequest(
                f"pronunciation_dictionary_locators: {len(locators)} dictionaries is over the limit of {MAX_LOCATORS}"
            )
        chosen = [
            self._located(locator, f"pronunciation_dictionary_locators[{i}]") for i, locator in enumerate(locators)
        ]
        chosen += [self._dictionaries[name] for name in self._server_wide if name in self._dictionaries]
        return _compiled(tuple(chosen))

    def _located(self, locator: DictionaryLocator, name: str) -> Dictionary:
        dictionary = self._dictionaries.get(locator.pronunciation_dictionary_id)
        if dictionary is None:
            field_name = locator.named_by or f"{name}.pronunciation_dictionary_id"
            raise UnknownDictionary(f"{field_name}: no dictionary {locator.pronunciation_dictionary_id!r} is stored")
        if locator.version_id is not None and locator.version_id != dictionary.version_id:
            raise UnknownDictionary(
                f"{name}.version_id: dictionary {dictionary.id!r} is at version {dictionary.version_id!r}, "
                f"not {locator.version_id!r}"
            )
        return dictionary

    def _write(self, dictionary: Dictionary) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        data = {
            "id": dictionary.id,
            "name": dictionary.name,
            "description": dictionary.description,
            "version_id": dictionary.version_id,
            "created_at": dictionary.created_at,
            "rules": [rule.to_json() for rule in dictionary.rules],
        }
        fd, temporary = tempfile.mkstemp(dir=self.directory, suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as file:
                json.dump(data, file, ensure_ascii=False)
            os.replace(temporary, self.directory / f"{dictionary.id}.json")
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise


@lru_cache(maxsize=64)
def _compiled(dictionaries: tuple[Dictionary, ...]) -> Lexicon:
    """One compiled lexicon per combination of dictionary versions (a version's rules never change)."""
    return Lexicon(rule for dictionary in dictionaries for rule in dictionary.rules)
