"""Pronunciation dictionaries: rule validation naming the field, matching (word boundaries, case, longest
first, first dictionary wins, never re-replaced), PLS files, and the store (persisted, bounded, versioned)."""

from __future__ import annotations

from pathlib import Path

import pytest

from media_server.config import Settings
from media_server.engine.dictionaries import DictionaryStore
from media_server.engine.types import DictionaryLocator
from media_server.errors import ConfigError, InvalidRequest, InvalidSsml, TooManyDictionaries, UnknownDictionary
from media_server.text.lexicon import Lexicon, Rule, rules_from_json, rules_from_pls
from media_server.text.ssml import Inline, Phoneme, Sub, Text

ALIAS = {"string_to_replace": "Nginx", "type": "alias", "alias": "engine x"}
PHONEME = {"string_to_replace": "tomato", "type": "phoneme", "phoneme": "təˈmɑːtoʊ", "alphabet": "ipa"}


def applied(rules: list[Rule], text: str) -> tuple[Inline, ...]:
    return Lexicon(rules).apply([Text(text)])


@pytest.mark.parametrize(
    ("rules", "message"),
    [
        (None, "rules: required"),
        ([], "rules: required"),
        (["x"], "rules[0]: must be an object"),
        ([{**ALIAS, "type": "ipa"}], "rules[0].type: 'ipa' is not one of alias, phoneme"),
        ([ALIAS, {**ALIAS, "alias": " "}], "rules[1].alias: required"),
        ([{**PHONEME, "alphabet": "cmu-arpabet"}], "rules[0].alphabet: 'cmu-arpabet' is not supported"),
        ([{**PHONEME, "phoneme": "tə<x>"}], "rules[0].phoneme: '<' is not an IPA letter"),
        ([{**ALIAS, "string_to_replace": "x" * 101}], "rules[0].string_to_replace: 101 characters is over 100"),
        ([{**ALIAS, "case_sensitive": "no"}], "rules[0].case_sensitive: must be true or false"),
    ],
)
def test_bad_rules_are_refused_naming_the_field(rules: object, message: str) -> None:
    with pytest.raises(InvalidRequest) as refused:
        rules_from_json(rules)
    assert refused.value.message.startswith(message)


def test_alias_and_phoneme_rules_on_word_boundaries_case_sensitive_by_default() -> None:
    rules = rules_from_json([ALIAS, PHONEME])
    assert applied(rules, "Nginx serves tomato, not Nginxes or nginx or tomatoes.") == (
        Sub("engine x", "Nginx"),
        Text(" serves "),
        Phoneme("təˈmɑːtoʊ", "tomato"),
        Text(", not Nginxes or nginx or tomatoes."),
    )


def test_case_and_boundaries_can_be_relaxed() -> None:
    rules = rules_from_json(
        [
            {**ALIAS, "case_sensitive": False},
            {"string_to_replace": "ph", "type": "alias", "alias": "f", "word_boundaries": False},
        ]
    )
    assert applied(rules, "NGINX and nginx, a graph") == (
        Sub("engine x", "NGINX"),
        Text(" and "),
        Sub("engine x", "nginx"),
        Text(", a gra"),
        Sub("f", "ph"),
    )


def test_the_longest_match_wins_then_the_first_rule_and_an_alias_is_never_replaced_again() -> None:
    rules = rules_from_json(
        [
            {"string_to_replace": "New York", "type": "alias", "alias": "the Big Apple"},
            {"string_to_replace": "New York City", "type": "alias", "alias": "NYC"},
            {"string_to_replace": "York", "type": "alias", "alias": "first"},
            {"string_to_replace": "York", "type": "alias", "alias": "second"},
            {"string_to_replace": "Apple", "type": "alias", "alias": "never"},
        ]
    )
    assert applied(rules, "New  York City, New York, York.") == (
        Sub("NYC", "New  York City"),
        Text(", "),
        Sub("the Big Apple", "New York"),
        Text(", "),
        Sub("first", "York"),
        Text("."),
    )


def test_a_pls_file_gives_the_same_rules() -> None:
    pls = """<?xml version="1.0" encoding="UTF-8"?>
<lexicon version="1.0" xmlns="http://www.w3.org/2005/01/pronunciation-lexicon" alphabet="ipa" xml:lang="en-US">
  <lexeme><grapheme>tomato</grapheme><phoneme>təˈmɑːtoʊ</phoneme></lexeme>
  <lexeme><grapheme>Nginx</grapheme><grapheme>NGINX</grapheme><alias>engine x</alias></lexeme>
</lexicon>"""
    assert rules_from_pls(pls, 10) == [
        Rule("tomato", "phoneme", "təˈmɑːtoʊ"),
        Rule("Nginx", "alias", "engine x"),
        Rule("NGINX", "alias", "engine x"),
    ]


@pytest.mark.parametrize(
    ("pls", "error", "message"),
    [
        ("<lexicon><lexeme><grapheme>x</grapheme></lexeme></lexicon>", InvalidRequest, "neither <alias> nor"),
        (
            '<lexicon alphabet="x-sampa"><lexeme><grapheme>x</grapheme><phoneme>t</phoneme></lexeme></lexicon>',
            InvalidRequest,
            "alphabet 'x-sampa'",
        ),  # fmt: skip
        ("<lexicon></lexicon>", InvalidRequest, "no <lexeme>"),
        ("<other/>", InvalidRequest, "is <lexicon>, not <other>"),
        ('<!DOCTYPE lexicon [<!ENTITY e "x">]><lexicon>&e;</lexicon>', InvalidSsml, "DOCTYPE"),
    ],
)
def test_a_bad_pls_file_is_refused(pls: str, error: type[InvalidRequest], message: str) -> None:
    with pytest.raises(error, match=message):
        rules_from_pls(pls, 10)


def test_a_pls_file_may_hold_as_many_lexemes_as_a_dictionary_rules() -> None:
    lexemes = "".join(f"<lexeme><grapheme>w{i}</grapheme><alias>a</alias></lexeme>" for i in range(1500))
    assert len(rules_from_pls(f"<lexicon>{lexemes}</lexicon>", 1500)) == 1500
    with pytest.raises(InvalidSsml, match="file: line 1, column .*: more than 800 elements"):
        rules_from_pls(f"<lexicon>{lexemes}</lexicon>", 100)


def test_matching_costs_no_more_with_thousands_of_rules() -> None:
    lexicon = Lexicon(Rule(f"word{i}x", "alias", f"alias {i}") for i in range(3000))
    applied = lexicon.apply([Text("hello word12x and word2999x " * 180)])
    assert applied[:4] == (
        Text("hello "),
        Sub("alias 12", "word12x"),
        Text(" and "),
        Sub("alias 2999", "word2999x"),
    )


def settings(tmp_path: Path, **overrides: object) -> Settings:
    return Settings(dictionary_dir=str(tmp_path / "dictionaries"), **overrides)  # type: ignore[arg-type]


@pytest.mark.asyncio
async def test_the_store_persists_across_restarts_and_locators_name_versions(tmp_path: Path) -> None:
    store = DictionaryStore(settings(tmp_path))
    store.load()
    added = await store.add("tech", "terms", rules_from_json([ALIAS, PHONEME]))
    reloaded = DictionaryStore(settings(tmp_path))
    reloaded.load()
    [again] = reloaded.all()
    assert again.to_json() == added.to_json()
    lexicon = reloaded.lexicon([DictionaryLocator(added.id, added.version_id)])
    assert lexicon.apply([Text("Nginx")]) == (Sub("engine x", "Nginx"),)
    with pytest.raises(UnknownDictionary, match=r"pronunciation_dictionary_locators\[0\]\.version_id"):
        reloaded.lexicon([DictionaryLocator(added.id, "old")])
    with pytest.raises(UnknownDictionary, match=r"\[1\]\.pronunciation_dictionary_id: no dictionary 'gone'"):
        reloaded.lexicon([DictionaryLocator(added.id), DictionaryLocator("gone")])
    with pytest.raises(InvalidRequest, match="4 dictionaries is over the limit of 3"):
        reloaded.lexicon([DictionaryLocator(added.id)] * 4)
    await reloaded.delete(added.id)
    assert list((tmp_path / "dictionaries").iterdir()) == []
    with pytest.raises(UnknownDictionary):
        reloaded.get(added.id)


@pytest.mark.asyncio
async def test_the_store_is_bounded_in_count_and_rules(tmp_path: Path) -> None:
    store = DictionaryStore(settings(tmp_path, max_dictionaries=1, max_dictionary_rules=1))
    with pytest.raises(InvalidRequest, match=r"rules: 2 rules is over the limit of 1 \(MAX_DICTIONARY_RULES\)"):
        await store.add("two", None, rules_from_json([ALIAS, PHONEME]))
    await store.add("one", None, rules_from_json([ALIAS]))
    with pytest.raises(TooManyDictionaries, match="MAX_DICTIONARIES"):
        await store.add("another", None, rules_from_json([ALIAS]))
    with pytest.raises(InvalidRequest, match="name: must be 1-100 characters"):
        await store.add(" ", None, rules_from_json([ALIAS]))


@pytest.mark.asyncio
async def test_server_wide_dictionaries_apply_after_the_requests_own(tmp_path: Path) -> None:
    store = DictionaryStore(settings(tmp_path))
    wide = await store.add("wide", None, rules_from_json([{**ALIAS, "alias": "server-wide"}]))
    own = await store.add("own", None, rules_from_json([ALIAS]))
    configured = DictionaryStore(settings(tmp_path, pronunciation_dictionaries=(wide.id,)))
    configured.load()
    assert configured.lexicon([]).apply([Text("Nginx")]) == (Sub("server-wide", "Nginx"),)
    assert configured.lexicon([DictionaryLocator(own.id)]).apply([Text("Nginx")]) == (Sub("engine x", "Nginx"),)
    with pytest.raises(InvalidRequest, match="PRONUNCIATION_DICTIONARIES"):
        await configured.delete(wide.id)
    with pytest.raises(ConfigError, match="PRONUNCIATION_DICTIONARIES: no stored dictionary has the id nope"):
        DictionaryStore(settings(tmp_path, pronunciation_dictionaries=("nope",))).load()


def test_an_unreadable_file_is_skipped(tmp_path: Path) -> None:
    folder = tmp_path / "dictionaries"
    folder.mkdir()
    (folder / "broken.json").write_text("{not json")
    store = DictionaryStore(settings(tmp_path))
    store.load()
    assert store.all() == []
