"""SSML: the subset the server speaks, parsed by a hardened parser into runs of speech and pauses.

Parsing. Expat from the standard library, hardened: a document type
declaration is refused, so no entity can be declared (only the five predefined
ones and character references exist) and nothing external is ever read; at
most `MAX_DEPTH` levels of elements and `MAX_ELEMENTS` elements (the text
itself is bounded by `MAX_TEXT_CHARS` before it gets here). Malformed SSML
raises `InvalidSsml` naming the line and column. A document not wrapped in
`<speak>` is read as if it were.

What is spoken (`SUPPORTED` says the same for `GET /v1/ssml`):
- `<speak>`, `<p>`, `<s>`: a paragraph or sentence ends a sentence;
- `<break time="500ms"|"1.5s" strength="...">`: exactly that much silence;
- `<prosody rate>`: the speaking rate, multiplied into the request's `speed`
  (named rates, "150%", "+20%", a plain factor); pitch and volume are ignored;
- `<voice name>` (a voice id) and `<lang xml:lang>`, `xml:lang` on `<speak>`,
  `<voice>`, `<p>`, `<s>`: who speaks, in which language;
- `<sub alias>`: the alias is said instead of the text;
- `<say-as interpret-as>` (and `format` for dates): `characters`/`spell-out`,
  `cardinal`, `ordinal`, `digits`, `date`, `time`, `telephone`;
- `<phoneme alphabet="ipa" ph>`: the IPA is said (where the voice can; others
  say the text).
Any other element is dropped and its text spoken. `flatten` turns a document
into `Run`s (inline content spoken with one voice, rate and language) and
`Pause`s; `fragment` writes a run's inline content back as SSML for the
engine core, which `inline_content` reads.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from xml.parsers import expat
from xml.sax.saxutils import escape, quoteattr

from media_server.errors import InvalidSsml

__all__ = [
    "SUPPORTED",
    "Element",
    "Inline",
    "Pause",
    "Phoneme",
    "Run",
    "SayAs",
    "Sub",
    "Text",
    "flatten",
    "fragment",
    "inline_content",
    "parse",
]

MAX_DEPTH = 32
MAX_ELEMENTS = 2000
MAX_BREAK_S = 10.0
MAX_PAUSE_TOTAL_S = 60.0
"""All the breaks of one request together."""
MAX_PHONEME_CHARS = 200
SENTENCE_ENDS = ".!?…"
BREAK_STRENGTHS_MS = {"none": 0, "x-weak": 100, "weak": 250, "medium": 400, "strong": 750, "x-strong": 1200}
RATES = {"x-slow": 0.5, "slow": 0.75, "medium": 1.0, "default": 1.0, "fast": 1.25, "x-fast": 1.75}
SAY_AS = {
    "characters": "characters",
    "spell-out": "characters",
    "verbatim": "characters",
    "cardinal": "cardinal",
    "number": "cardinal",
    "ordinal": "ordinal",
    "digits": "digits",
    "date": "date",
    "time": "time",
    "telephone": "telephone",
}
"""`interpret-as` values, and the reading each one names."""
PHONEME_MARKS = frozenset(" .ˈˌːˑ|‖‿-'")
SUPPORTED: dict[str, dict[str, str]] = {
    "speak": {"xml:lang": "the language of the whole document"},
    "p": {"xml:lang": "a paragraph: ends a sentence"},
    "s": {"xml:lang": "a sentence: ends a sentence"},
    "break": {
        "time": f"silence, e.g. 500ms or 1.5s (at most {MAX_BREAK_S:g} s; {MAX_PAUSE_TOTAL_S:g} s per request)",
        "strength": ", ".join(f"{name} ({ms} ms)" for name, ms in BREAK_STRENGTHS_MS.items()),
    },
    "prosody": {"rate": f"{', '.join(RATES)}, a percentage (150%, +20%) or a factor (1.5); times the request's speed"},
    "voice": {"name": "a voice id of GET /v1/voices", "xml:lang": "the language it speaks here"},
    "lang": {"xml:lang": "the language of its text"},
    "sub": {"alias": "said instead of the text"},
    "say-as": {
        "interpret-as": ", ".join(SAY_AS),
        "format": "for dates: mdy, dmy, ymd, md, dm, ym, my, d, m or y",
    },
    "phoneme": {"alphabet": "ipa", "ph": "the IPA to say (voices without phonemes say the text)"},
}
_TIME = re.compile(r"\s*(\d+(?:\.\d+)?)\s*(ms|s)\s*")
_RATE = re.compile(r"\s*([+-]?)(\d+(?:\.\d+)?)\s*(%?)\s*")
_LANGUAGE = re.compile(r"[A-Za-z]{2,3}(?:-[A-Za-z0-9]{2,8})*")


@dataclass
class Element:
    """An element of a parsed document: its name, attributes, children (text and elements) and position."""

    tag: str
    attrs: dict[str, str]
    line: int
    column: int
    children: list[Element | str] = field(default_factory=list)

    @property
    def where(self) -> str:
        return f"line {self.line}, column {self.column}"

    def text(self) -> str:
        """All the text inside, elements left out."""
        return "".join(child if isinstance(child, str) else child.text() for child in self.children)


@dataclass(frozen=True)
class Text:
    """Plain text, normalized by the engine."""

    text: str


@dataclass(frozen=True)
class SayAs:
    kind: str
    """One of the readings `SAY_AS` names."""
    format: str | None
    text: str


@dataclass(frozen=True)
class Phoneme:
    ipa: str
    text: str
    """What a voice that cannot speak phonemes says instead."""


@dataclass(frozen=True)
class Sub:
    """An alias said instead of the text (`<sub>`, a dictionary's alias rule); word timings name the text."""

    alias: str
    text: str


Inline = Text | SayAs | Phoneme | Sub


@dataclass(frozen=True)
class Run:
    """Inline content spoken with one voice, rate and language (None: the request's)."""

    inlines: tuple[Inline, ...]
    voice: str | None
    rate: float
    language: str | None
    where: str
    """Where the element that set these is (for errors about them)."""

    @property
    def spoken(self) -> str:
        """The words said as written (an alias, a phoneme's text, a say-as's content): what language
        identification reads."""
        return "".join(item.alias if isinstance(item, Sub) else item.text for item in self.inlines)


@dataclass(frozen=True)
class Pause:
    seconds: float


def parse(text: str, max_elements: int = MAX_ELEMENTS) -> Element:
    """The `<speak>` element of `text` (wrapped in one when it has none); raises InvalidSsml."""
    wrapped = not text.lstrip().startswith(("<speak", "<?xml", "<!DOCTYPE"))
    source = f"<speak>{text}</speak>" if wrapped else text
    document = parse_xml(source, "ssml", shift=len("<speak>") if wrapped else 0, max_elements=max_elements)
    if document.tag != "speak":
        raise InvalidSsml(f"ssml: {document.where}: the root element must be <speak>, not <{document.tag}>")
    return document


def parse_xml(source: str, name: str, shift: int = 0, max_elements: int = MAX_ELEMENTS) -> Element:
    """The root element of an XML document, parsed hardened; raises InvalidSsml naming `name` and the position.

    `shift`: characters the caller put before the first line (subtracted from its columns).
    """
    root = Element("#document", {}, 1, 1)
    stack = [root]
    count = 0
    parser = expat.ParserCreate()
    parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)

    def position() -> tuple[int, int]:
        line, column = parser.CurrentLineNumber, parser.CurrentColumnNumber + 1
        return line, column - shift if line == 1 else column

    def refusal(message: str) -> InvalidSsml:
        line, column = position()
        return InvalidSsml(f"{name}: line {line}, column {column}: {message}")

    def start(tag: str, attrs: dict[str, str]) -> None:
        nonlocal count
        count += 1
        if count > max_elements:
            raise refusal(f"more than {max_elements} elements")
        if len(stack) > MAX_DEPTH:
            raise refusal(f"elements nest deeper than {MAX_DEPTH} levels")
        element = Element(tag.rpartition(":")[2], attrs, *position())
        stack[-1].children.append(element)
        stack.append(element)

    def end(tag: str) -> None:
        stack.pop()

    def characters(data: str) -> None:
        stack[-1].children.append(data)

    def no_doctype(*_: object) -> int:
        raise refusal("a document type declaration (DOCTYPE) is not allowed")

    parser.StartElementHandler = start
    parser.EndElementHandler = end
    parser.CharacterDataHandler = characters
    parser.StartDoctypeDeclHandler = no_doctype
    parser.EntityDeclHandler = no_doctype
    parser.ExternalEntityRefHandler = no_doctype
    try:
        parser.Parse(source, True)
    except expat.ExpatError as exc:
        column = exc.offset + 1 - (shift if exc.lineno == 1 else 0)
        raise InvalidSsml(
            f"{name}: line {exc.lineno}, column {max(column, 1)}: {expat.ErrorString(exc.code)}"
        ) from None
    document = root.children[0]
    assert isinstance(document, Element)
    return document


@dataclass(frozen=True)
class _Context:
    voice: str | None = None
    rate: float = 1.0
    language: str | None = None
    where: str = "line 1, column 1"


def flatten(document: Element) -> list[Run | Pause]:
    """The runs and pauses of a parsed document, in order (runs may be empty); raises InvalidSsml."""
    out: list[Run | Pause] = []
    pending: list[Inline] = []
    pause_total = 0.0

    def close_run(context: _Context) -> None:
        if pending:
            out.append(Run(tuple(pending), context.voice, context.rate, context.language, context.where))
            pending.clear()

    def end_sentence() -> None:
        written = "".join(item.text for item in pending if isinstance(item, Text)).rstrip()
        pending.append(Text(" " if not written or written[-1] in SENTENCE_ENDS else ". "))

    def walk(element: Element, context: _Context) -> None:
        nonlocal pause_total
        tag = element.tag
        inner = _inner_context(element, context)
        if inner != context:
            close_run(context)
        if tag == "break":
            close_run(inner)
            seconds = _break_seconds(element)
            pause_total += seconds
            if pause_total > MAX_PAUSE_TOTAL_S:
                raise InvalidSsml(f"ssml: {element.where}: breaks add up to over {MAX_PAUSE_TOTAL_S:g} s")
            out.append(Pause(seconds))
        elif tag == "sub":
            pending.append(Sub(_required(element, "alias"), element.text()))
        elif tag == "say-as":
            kind = _required(element, "interpret-as").strip().lower()
            if kind not in SAY_AS:
                raise InvalidSsml(f"ssml: {element.where}: interpret-as {kind!r} is not one of {', '.join(SAY_AS)}")
            pending.append(SayAs(SAY_AS[kind], element.attrs.get("format"), element.text()))
        elif tag == "phoneme":
            pending.append(Phoneme(_ipa(element), element.text()))
        else:  # speak, p, s, voice, prosody, lang, and any element unknown: its text is spoken
            for child in element.children:
                if isinstance(child, str):
                    pending.append(Text(child))
                else:
                    walk(child, inner)
            if tag in ("p", "s"):
                end_sentence()
        if inner != context:
            close_run(inner)

    walk(document, _Context())
    close_run(_Context())
    return out


def _inner_context(element: Element, context: _Context) -> _Context:
    inner = context
    language = element.attrs.get("xml:lang") or (element.attrs.get("language") if element.tag == "voice" else None)
    if language is not None:
        if not _LANGUAGE.fullmatch(language.strip()):
            raise InvalidSsml(f"ssml: {element.where}: xml:lang {language!r} is not a language code such as en-US")
        inner = replace(inner, language=language.strip(), where=element.where)
    if element.tag == "voice" and element.attrs.get("name", "").strip():
        inner = replace(inner, voice=element.attrs["name"].strip(), where=element.where)
    if element.tag == "prosody" and "rate" in element.attrs:
        inner = replace(inner, rate=inner.rate * _rate(element), where=element.where)
    return inner


def _required(element: Element, name: str) -> str:
    value = element.attrs.get(name)
    if value is None or not value.strip():
        raise InvalidSsml(f"ssml: {element.where}: <{element.tag}> needs a non-empty {name} attribute")
    return value


def _break_seconds(element: Element) -> float:
    if "time" in element.attrs:
        match = _TIME.fullmatch(element.attrs["time"])
        if match is None:
            raise InvalidSsml(f"ssml: {element.where}: break time {element.attrs['time']!r} is not like 500ms or 2s")
        seconds = float(match[1]) / (1000 if match[2] == "ms" else 1)
        if seconds > MAX_BREAK_S:
            raise InvalidSsml(f"ssml: {element.where}: break time {seconds:g} s is outside [0, {MAX_BREAK_S:g}] s")
        return seconds
    strength = element.attrs.get("strength", "medium").strip()
    if strength not in BREAK_STRENGTHS_MS:
        raise InvalidSsml(
            f"ssml: {element.where}: break strength {strength!r} is not one of {', '.join(BREAK_STRENGTHS_MS)}"
        )
    return BREAK_STRENGTHS_MS[strength] / 1000


def _rate(element: Element) -> float:
    raw = element.attrs["rate"]
    named = RATES.get(raw.strip().lower())
    if named is not None:
        return named
    match = _RATE.fullmatch(raw)
    if match is None:
        raise InvalidSsml(
            f"ssml: {element.where}: prosody rate {raw!r} is not one of {', '.join(RATES)}, "
            "a percentage (150%, +20%) or a factor (1.5)"
        )
    sign, number, percent = match[1], float(match[2]), match[3]
    if sign:
        factor = 1 + (number if sign == "+" else -number) / (100 if percent else 1)
    else:
        factor = number / 100 if percent else number
    if factor <= 0:
        raise InvalidSsml(f"ssml: {element.where}: prosody rate {raw!r} is not a positive rate")
    return factor


def _ipa(element: Element) -> str:
    alphabet = element.attrs.get("alphabet", "ipa").strip().lower()
    if alphabet != "ipa":
        raise InvalidSsml(f"ssml: {element.where}: phoneme alphabet {alphabet!r} is not supported; use ipa")
    ipa = " ".join(_required(element, "ph").split())
    if len(ipa) > MAX_PHONEME_CHARS:
        raise InvalidSsml(f"ssml: {element.where}: ph is {len(ipa)} characters, over {MAX_PHONEME_CHARS}")
    check_ipa(ipa, f"ssml: {element.where}: ph")
    return ipa


def check_ipa(ipa: str, field_name: str) -> None:
    """Raise InvalidSsml naming `field_name` unless `ipa` is made of letters, diacritics and IPA marks."""
    for character in ipa:
        if character not in PHONEME_MARKS and unicodedata.category(character)[0] not in "LM":
            raise InvalidSsml(f"{field_name}: {character!r} is not an IPA letter, diacritic or mark")


def fragment(inlines: tuple[Inline, ...]) -> str:
    """`inlines` as an SSML document of inline elements only (what the engine core reads)."""
    return "<speak>" + "".join(_write(item) for item in inlines) + "</speak>"


def _write(item: Inline) -> str:
    match item:
        case Text(text=text):
            return escape(text)
        case SayAs(kind=kind, format=form, text=text):
            form_attr = "" if form is None else f" format={quoteattr(form)}"
            return f"<say-as interpret-as={quoteattr(kind)}{form_attr}>{escape(text)}</say-as>"
        case Phoneme(ipa=ipa, text=text):
            return f'<phoneme alphabet="ipa" ph={quoteattr(ipa)}>{escape(text)}</phoneme>'
        case Sub(alias=alias, text=text):
            return f"<sub alias={quoteattr(alias)}>{escape(text)}</sub>"


def inline_content(text: str) -> Iterator[Inline]:
    """The inline content of a `fragment`, runs joined and pauses left out.

    A fragment is the engine front's own writing, of text already bounded: a dictionary's rules may make
    it hold more elements than a client's document may (`MAX_ELEMENTS`), one per matched word at most.
    """
    for part in flatten(parse(text, max_elements=len(text))):
        if isinstance(part, Run):
            yield from part.inlines
