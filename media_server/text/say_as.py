"""`<say-as>`: content read as the SSML author says (characters, numbers, digits, dates, times, telephones).

`read_as(kind, format, text, language)` gives the words, or None when the
content is not what `kind` says ("cardinal" around "abc"): the caller then
speaks it as ordinary text, as SSML lets a processor do. Numbers are said in
`language` where `num2words` knows it; characters, dates, times and telephone
numbers follow the English rules (`normalize.py`), which they reuse.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from media_server.text.normalize import normalize, number_words

__all__ = ["read_as"]

_MONTHS = "January February March April May June July August September October November December".split()
_CHARACTER_NAMES = {
    ".": "dot",
    "-": "dash",
    "_": "underscore",
    "@": "at",
    "/": "slash",
    "&": "and",
    "+": "plus",
    "#": "hash",
    "*": "star",
    ":": "colon",
}
_CARDINAL = re.compile(r"([+\-−]?)(\d{1,3}(?:,\d{3})+|\d+)(?:\.(\d+))?")
_ORDINAL = re.compile(r"(\d+)(?:st|nd|rd|th|\.)?")
_TIME = re.compile(r"(\d{1,2})(?::(\d{2}))?(?::(\d{2}))?\s*([AaPp]\.?[Mm]\.?)?")
_DATE_FIELDS = {"d": r"(?P<d>\d{1,2})", "m": r"(?P<m>\d{1,2})", "y": r"(?P<y>\d{2}|\d{4})"}


def read_as(kind: str, form: str | None, text: str, language: str = "en") -> str | None:
    """The words `text` is read as when it is a `kind` (see `ssml.SAY_AS`), or None when it is not one."""
    content = " ".join(text.split())
    if not content:
        return None
    say = number_words(language)
    match kind:
        case "characters":
            return _characters(content, say.cardinal)
        case "cardinal":
            found = _CARDINAL.fullmatch(content)
            if found is None:
                return None
            words = say.number(found[2] + (f".{found[3]}" if found[3] else ""))
            return f"minus {words}" if found[1] and say.lang.startswith("en") else words
        case "ordinal":
            found = _ORDINAL.fullmatch(content)
            return say.ordinal(int(found[1])) if found else None
        case "digits":
            return say.digits(content) or None
        case "date":
            return _date(content, (form or "mdy").strip().lower())
        case "time":
            return _time(content)
        case "telephone":
            groups = re.findall(r"\d+", content)
            if not groups:
                return None
            plus = "plus " if content.startswith("+") else ""
            return plus + ", ".join(say.digits(group) for group in groups)
    return None


def _characters(content: str, cardinal: Callable[[int], str]) -> str:
    """One word per character, commas between (so a lone "A" is the letter, never the article)."""
    words: list[str] = []
    for character in content:
        if character.isalpha():
            words.append(character.upper())
        elif character.isdigit():
            words.append(cardinal(int(character)))
        elif character in _CHARACTER_NAMES:
            words.append(_CHARACTER_NAMES[character])
    return ", ".join(words) if words else content


def _date(content: str, form: str) -> str | None:
    if not form or any(f not in _DATE_FIELDS for f in form) or len(set(form)) != len(form):
        return None
    pattern = r"[\s/.-]".join(_DATE_FIELDS[f] for f in form)
    found = re.fullmatch(pattern, content)
    if found is None:
        return None
    fields = found.groupdict()
    month = int(fields["m"]) if fields.get("m") else None
    day = int(fields["d"]) if fields.get("d") else None
    year = fields.get("y")
    if year is not None and len(year) == 2:
        year = f"{20 if int(year) < 70 else 19}{year}"
    if month is not None and not 1 <= month <= 12 or day is not None and not 1 <= day <= 31:
        return None
    # Written out as English normalization reads a named date ("May 3rd, 2024"), and read by it.
    parts = []
    if month is not None:
        parts.append(_MONTHS[month - 1])
    if day is not None:
        parts.append(f"{day}th" if month is not None else f"the {day}th")
    written = " ".join(parts)
    if year is not None:
        written = f"{written}, {year}" if written else year
    return normalize(written)


def _time(content: str) -> str | None:
    found = _TIME.fullmatch(content)
    if found is None or (found[2] is None and found[4] is None):
        return None
    hour, minute, second = int(found[1]), found[2] or "00", found[3]
    if hour > 23 or int(minute) > 59 or (second is not None and int(second) > 59):
        return None
    written = f"{hour}:{minute}" + (f":{second}" if second else "") + (f" {found[4]}" if found[4] else "")
    return normalize(written)
