"""Pronunciation rules (ElevenLabs' shape), read from JSON or a PLS file, and applied to text.

A rule replaces `string_to_replace` with an `alias` (other text, normalized
like the rest) or with a `phoneme` (IPA; said by voices that speak phonemes,
the others say the word as written). Matching:
- on word boundaries: a rule for "Tom" does not touch "Tomato" (a rule may set
  `word_boundaries: false`);
- case-sensitive: "SQL" does not match "sql" (a rule may set
  `case_sensitive: false`);
- at each place, the longest match wins; among equally long ones, the first
  dictionary given, and in it the first rule;
- the replacement is not searched again (an alias is never itself replaced).

PLS (W3C Pronunciation Lexicon Specification) files give the same rules:
each `<lexeme>`'s `<grapheme>`s are replaced by its first `<alias>` or
`<phoneme>` (alphabet "ipa" only); they are parsed by the same hardened
parser as SSML.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from media_server.errors import InvalidRequest, InvalidSsml
from media_server.text.ssml import MAX_PHONEME_CHARS, Element, Inline, Phoneme, Sub, Text, check_ipa, parse_xml

__all__ = ["Lexicon", "Rule", "rules_from_json", "rules_from_pls"]

MAX_STRING_CHARS = 100
MAX_ALIAS_CHARS = 500
ELEMENTS_PER_LEXEME = 8
"""Elements a PLS file may have per rule allowed (a lexeme, its graphemes, an alias or phoneme, ...)."""
RuleKind = Literal["alias", "phoneme"]


@dataclass(frozen=True)
class Rule:
    string_to_replace: str
    type: RuleKind
    replacement: str
    """The alias text, or the IPA."""
    case_sensitive: bool = True
    word_boundaries: bool = True

    def to_json(self) -> dict[str, Any]:
        """The rule in ElevenLabs' JSON shape."""
        body: dict[str, Any] = {"string_to_replace": self.string_to_replace, "type": self.type}
        if self.type == "alias":
            body["alias"] = self.replacement
        else:
            body |= {"phoneme": self.replacement, "alphabet": "ipa"}
        return body | {"case_sensitive": self.case_sensitive, "word_boundaries": self.word_boundaries}


def rules_from_json(value: object, name: str = "rules") -> list[Rule]:
    """Rules from a JSON list in ElevenLabs' shape; raises InvalidRequest naming the field (`rules[2].alias`)."""
    if not isinstance(value, list) or not value:
        raise InvalidRequest(f"{name}: required, a non-empty list of rules")
    return [_rule(item, f"{name}[{i}]") for i, item in enumerate(value)]


def _rule(item: object, name: str) -> Rule:
    if not isinstance(item, dict):
        raise InvalidRequest(f"{name}: must be an object with string_to_replace, type and alias or phoneme")
    kind = item.get("type")
    if kind not in ("alias", "phoneme"):
        raise InvalidRequest(f"{name}.type: {kind!r} is not one of alias, phoneme")
    if kind == "phoneme" and str(item.get("alphabet", "ipa")).lower() != "ipa":
        raise InvalidRequest(f"{name}.alphabet: {item.get('alphabet')!r} is not supported; use ipa")
    flags = {key: item.get(key, True) for key in ("case_sensitive", "word_boundaries")}
    for key, flag in flags.items():
        if not isinstance(flag, bool):
            raise InvalidRequest(f"{name}.{key}: must be true or false")
    return _checked(_string(item, "string_to_replace", name), kind, _string(item, kind, name), name, **flags)


def _string(item: dict[str, Any], key: str, name: str) -> str:
    value = item.get(key)
    if not isinstance(value, str) or not value.strip():
        raise InvalidRequest(f"{name}.{key}: required, a non-empty string")
    return value


def _checked(
    string: str, kind: RuleKind, replacement: str, name: str, case_sensitive: bool = True, word_boundaries: bool = True
) -> Rule:
    string, replacement = " ".join(string.split()), " ".join(replacement.split())
    if len(string) > MAX_STRING_CHARS:
        raise InvalidRequest(f"{name}.string_to_replace: {len(string)} characters is over {MAX_STRING_CHARS}")
    if "\x00" in string + replacement:
        raise InvalidRequest(f"{name}: contains U+0000 (NUL)")
    if kind == "alias" and len(replacement) > MAX_ALIAS_CHARS:
        raise InvalidRequest(f"{name}.alias: {len(replacement)} characters is over {MAX_ALIAS_CHARS}")
    if kind == "phoneme":
        if len(replacement) > MAX_PHONEME_CHARS:
            raise InvalidRequest(f"{name}.phoneme: {len(replacement)} characters is over {MAX_PHONEME_CHARS}")
        try:
            check_ipa(replacement, f"{name}.phoneme")
        except InvalidSsml as exc:
            raise InvalidRequest(exc.message) from None
    return Rule(string, kind, replacement, case_sensitive, word_boundaries)


def rules_from_pls(document: str, max_rules: int) -> list[Rule]:
    """The rules of a PLS lexicon of at most `max_rules` lexemes, about; raises InvalidRequest (InvalidSsml for
    malformed XML) naming what is wrong."""
    lexicon = parse_xml(document, "file", max_elements=ELEMENTS_PER_LEXEME * max_rules)
    if lexicon.tag != "lexicon":
        raise InvalidRequest(f"file: the root element of a PLS file is <lexicon>, not <{lexicon.tag}>")
    alphabet = lexicon.attrs.get("alphabet", "ipa").strip().lower()
    rules: list[Rule] = []
    for lexeme in _children(lexicon, "lexeme"):
        name = f"file: <lexeme> at {lexeme.where}"
        aliases = _children(lexeme, "alias")
        phonemes = _children(lexeme, "phoneme")
        if aliases:
            kind: RuleKind = "alias"
            replacement = aliases[0].text()
        elif phonemes:
            if phonemes[0].attrs.get("alphabet", alphabet).strip().lower() != "ipa":
                raise InvalidRequest(f"{name}: alphabet {alphabet!r} is not supported; use ipa")
            kind, replacement = "phoneme", phonemes[0].text()
        else:
            raise InvalidRequest(f"{name}: has neither <alias> nor <phoneme>")
        graphemes = [grapheme.text() for grapheme in _children(lexeme, "grapheme")]
        if not any(g.strip() for g in graphemes) or not replacement.strip():
            raise InvalidRequest(f"{name}: needs a <grapheme> and a non-empty {kind}")
        rules.extend(_checked(g, kind, replacement, name) for g in graphemes if g.strip())
    if not rules:
        raise InvalidRequest("file: the lexicon has no <lexeme>")
    return rules


def _children(element: Element, tag: str) -> list[Element]:
    return [child for child in element.children if isinstance(child, Element) and child.tag == tag]


class Lexicon:
    """Rules from one or more dictionaries, in a character trie (lower case; whitespace runs as one space).

    Matching walks the trie from each place in the text, so its cost grows with the text and the longest
    rule, never with the number of rules.
    """

    def __init__(self, rules: Iterable[Rule]) -> None:
        self._rules: list[Rule] = []
        self._root = _Node()
        seen: set[tuple[str, bool]] = set()
        for rule in rules:
            string = rule.string_to_replace if rule.case_sensitive else rule.string_to_replace.lower()
            if (string, rule.word_boundaries) in seen:  # the first dictionary (and rule) given wins
                continue
            seen.add((string, rule.word_boundaries))
            node = self._root
            for character in _lowered(rule.string_to_replace):
                node = node.children.setdefault(character, _Node())
            node.rules.append(len(self._rules))
            self._rules.append(rule)

    def __bool__(self) -> bool:
        return bool(self._rules)

    def apply(self, inlines: Sequence[Inline]) -> tuple[Inline, ...]:
        """`inlines` with the rules applied to their plain text (say-as and phonemes are left alone)."""
        if not self._rules:
            return tuple(inlines)
        out: list[Inline] = []
        for item in inlines:
            if not isinstance(item, Text):
                out.append(item)
                continue
            text, lowered = item.text, _lowered(item.text)
            done = start = 0
            while start < len(text):
                found = self._match(text, lowered, start)
                if found is None:
                    start += 1
                    continue
                end, rule = found
                out.append(Text(text[done:start]))
                out.append(
                    Sub(rule.replacement, text[start:end])
                    if rule.type == "alias"
                    else Phoneme(rule.replacement, text[start:end])
                )
                done = start = end
            out.append(Text(text[done:]))
        return tuple(piece for piece in out if not isinstance(piece, Text) or piece.text)

    def _match(self, text: str, lowered: str, start: int) -> tuple[int, Rule] | None:
        """The longest rule (the first given among equals) that matches at `start`, and where it ends."""
        best: tuple[int, Rule] | None = None
        node, at = self._root, start
        while True:
            for index in node.rules:
                rule = self._rules[index]
                if (best is None or at > best[0]) and _fits(rule, text, start, at):
                    best = (at, rule)
            if at >= len(text):
                return best
            if lowered[at].isspace():
                following = node.children.get(" ")
                while at < len(text) and lowered[at].isspace():
                    at += 1
            else:
                following = node.children.get(lowered[at])
                at += 1
            if following is None:
                return best
            node = following


@dataclass
class _Node:
    children: dict[str, _Node] = field(default_factory=dict)
    rules: list[int] = field(default_factory=list)
    """The rules (indices, in the order given) whose string ends here."""


def _lowered(text: str) -> str:
    """`text` in lower case, character for character (a character whose lower case is longer stays)."""
    return "".join(low if len(low := character.lower()) == 1 else character for character in text)


def _word(character: str) -> bool:
    return character.isalnum() or character == "_"


def _fits(rule: Rule, text: str, start: int, end: int) -> bool:
    if rule.case_sensitive and " ".join(text[start:end].split()) != rule.string_to_replace:
        return False
    if rule.word_boundaries:
        return not (start > 0 and _word(text[start - 1])) and not (end < len(text) and _word(text[end]))
    return True
