"""The text of an SSML document, for a voice that reads plain text (jambonz sends SSML when its app uses it).

Elements are dropped and their text kept; `<sub alias="...">` is read as its
alias, `<break>` becomes a pause (a comma), and paragraphs and sentences
(`<p>`, `<s>`) end where they close. Read with the standard library's
tolerant HTML tokenizer: it defines no entities beyond HTML's and fetches
nothing, so a document cannot expand or reach out, and malformed markup still
yields its text.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

_SPACES = re.compile(r"\s+")
_SPACE_BEFORE_PUNCTUATION = re.compile(r"\s+([,.!?])")
_SENTENCE_ENDS = frozenset({"p", "s"})


class _SsmlText(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._subs: list[bool] = []
        """For each open `<sub>`: whether it had an alias (its own text is then not read)."""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "sub":
            alias = dict(attrs).get("alias")
            if alias is not None and not any(self._subs):
                self.parts.append(f" {alias} ")
            self._subs.append(alias is not None)
        elif tag == "break":
            self.parts.append(", ")
        elif tag in _SENTENCE_ENDS:
            self.parts.append(" ")

    def handle_endtag(self, tag: str) -> None:
        if tag == "sub" and self._subs:
            self._subs.pop()
        elif tag in _SENTENCE_ENDS:
            self.parts.append(". " if self.parts and not self.parts[-1].rstrip().endswith((".", "!", "?")) else " ")

    def handle_data(self, data: str) -> None:
        if not any(self._subs):
            self.parts.append(data)


def ssml_text(document: str) -> str:
    """What `document` says, as plain text."""
    reader = _SsmlText()
    reader.feed(document)
    reader.close()
    return _SPACE_BEFORE_PUNCTUATION.sub(r"\1", _SPACES.sub(" ", "".join(reader.parts))).strip()
