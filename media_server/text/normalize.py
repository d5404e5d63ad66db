"""Text normalization: written forms turned into the words a voice should say.

`normalize(text, language)` rewrites numbers, money, percentages, dates,
times, years, phone numbers, units, abbreviations, URLs, e-mail addresses and
symbols as plain words, so that the synthesizer never has to guess how to read
"$3.50" or "Dr. Smith". Number words come from `num2words`.

Languages. English (and any language `num2words` does not know, including
"auto") gets the full rule set below. A language `num2words` supports gets its
own number words for standalone integers, percentages and whole currency
amounts; everything whose written convention differs between languages
(decimal and thousands separators, dates, times, ordinals, units,
abbreviations) is left to the voice's own phonemizer.

Punctuation. Sentence punctuation is kept, so the segmenter splits normalized
text where it splits the original: an abbreviation's period is dropped when it
is a title ("Dr. Smith" -> "Doctor Smith") and kept when it also ends the
sentence ("Main St. Then" -> "Main Street. Then"). Readings that need a pause
(phone-number groups) use commas, which are never sentence ends.

Documented choices:
- `a/b` with a year is a US month/day date, day/month when the first part is
  above 12; two-digit years pivot at 70 (5/3/24 -> 2024, 5/3/99 -> 1999).
  Without a year, `a/b` with a < b <= 10 is a fraction ("3/4" -> "three
  quarters"); otherwise a valid month/day is a date ("5/3" -> "May third");
  anything else is read "a slash b".
- A standalone four-digit number from 1100 to 2099 is a year ("1999" ->
  "nineteen ninety-nine", "2005" -> "two thousand five"); with a thousands
  separator ("1,999") it is a cardinal. English cardinals drop "and"
  (American reading: "one hundred five").
- A whole number before a fraction is a mixed number ("2 1/2" -> "two and a
  half", "1¾" -> "one and three quarters").
- A time with seconds is a time of day ("at 4:30:15 PM" -> "four thirty and
  fifteen seconds PM") with AM/PM, after "at", "by", "until", "from" and the
  like, or with a two-digit hour; otherwise a duration ("2:01:09" -> "two
  hours, one minute and nine seconds").
- An abbreviated unit's period is dropped unless it also ends the sentence
  ("160 mi. in total" -> "one hundred sixty miles in total").
- A unit after "per" or a slash is read singular ("$120 per yr." -> "one
  hundred twenty dollars per year", "$5/mo" -> "five dollars per month").
- Numbers with two or more dots are versions, read part by part ("3.11.4" ->
  "three point eleven point four"), as is a number after "v" or "version"
  ("v3.10" -> "version three point ten"); four parts up to 255 are an IPv4
  address, read digit by digit ("dot" between); "31.12.2023" is a day-first date.
- Digits are read one by one in phone numbers (groups as written, joined by
  commas), in numbers with a leading zero ("007"), and in runs of ten or more
  digits (grouped in threes, the last group taking up to four).

Alignment. `normalize_aligned` also says where each character of the
normalized text came from (`Normalized.origin`): a reading maps to the whole
written form it replaced ("three dollars and fifty cents" to "$3.50"), so
word timings of the spoken text can be given for the words of the text as
written.

Streaming. `normalize` is a pure function of its input and never fails on a
fragment: a number cut in half is read as the two numbers it looks like
("1,0" + "00" reads "one,zero" and "zero zero", "$3." reads "three dollars.").
The engine must therefore normalize complete segments from
`media_server.text.segmenter`, which only cuts at whitespace, so no number,
URL or abbreviation is ever split. Leading and trailing whitespace is kept.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache

from num2words import CONVERTER_CLASSES, num2words

__all__ = ["Normalized", "normalize", "normalize_aligned", "number_words"]

Rule = tuple[re.Pattern[str], Callable[[re.Match[str]], str]]

_NUM = r"\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?"
# A number token starts after no word character or separator and does not run on into one.
_BEFORE = r"(?<![\w.,])"
_AFTER = r"(?!\w|[.,]\d)"

_MONTHS = ("January February March April May June July August September October November December").split()
_MONTH_NUMBERS = {name.lower(): i for i, name in enumerate(_MONTHS, 1)} | {
    name[:3].lower(): i for i, name in enumerate(_MONTHS, 1)
}
_MONTH_NUMBERS["sept"] = 9
# Capitalized only: "may 5" is a verb and a number, "May 5" a date.
_MONTH_NAME = "|".join(sorted((m.capitalize() for m in _MONTH_NUMBERS), key=len, reverse=True))
_DAYS_IN_MONTH = (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)

# English currency names: (singular, plural) for the main unit and the hundredth, if spoken.
_CURRENCIES: dict[str, tuple[tuple[str, str], tuple[str, str] | None]] = {
    "USD": (("dollar", "dollars"), ("cent", "cents")),
    "EUR": (("euro", "euros"), ("cent", "cents")),
    "GBP": (("pound", "pounds"), ("penny", "pence")),
    "JPY": (("yen", "yen"), None),
    "INR": (("rupee", "rupees"), ("paisa", "paise")),
    "CNY": (("yuan", "yuan"), None),
    "CHF": (("Swiss franc", "Swiss francs"), ("centime", "centimes")),
    "CAD": (("Canadian dollar", "Canadian dollars"), ("cent", "cents")),
    "AUD": (("Australian dollar", "Australian dollars"), ("cent", "cents")),
}
# A time with seconds after one of these words is a time of day ("at 1:30:15").
_TIME_OF_DAY_BEFORE = re.compile(r"\b(?:at|by|until|till|before|after|from|to|since)\s+\Z", re.IGNORECASE)
_CURRENCY_SYMBOLS = {"$": "USD", "€": "EUR", "£": "GBP", "¥": "JPY", "₹": "INR"}
_SCALES = {"k": "thousand", "K": "thousand", "M": "million", "bn": "billion", "B": "billion"}
_SCALE = r"(?:\s?(?P<scale>thousand|million|billion|trillion)\b|(?P<suffix>bn|[kKMB])(?!\w))"

_UNITS: dict[str, tuple[str, str]] = {
    "km/h": ("kilometer per hour", "kilometers per hour"),
    "kph": ("kilometer per hour", "kilometers per hour"),
    "mph": ("mile per hour", "miles per hour"),
    "km": ("kilometer", "kilometers"),
    "cm": ("centimeter", "centimeters"),
    "mm": ("millimeter", "millimeters"),
    "mi": ("mile", "miles"),
    "ft": ("foot", "feet"),
    "kg": ("kilogram", "kilograms"),
    "mg": ("milligram", "milligrams"),
    "g": ("gram", "grams"),
    "lb": ("pound", "pounds"),
    "lbs": ("pound", "pounds"),
    "oz": ("ounce", "ounces"),
    "tbsp": ("tablespoon", "tablespoons"),
    "tsp": ("teaspoon", "teaspoons"),
    "yd": ("yard", "yards"),
    "gal": ("gallon", "gallons"),
    "sec": ("second", "seconds"),
    "yr": ("year", "years"),
    "yrs": ("year", "years"),
    "wk": ("week", "weeks"),
    "wks": ("week", "weeks"),
    "ml": ("milliliter", "milliliters"),
    "mL": ("milliliter", "milliliters"),
    "°C": ("degree Celsius", "degrees Celsius"),
    "°F": ("degree Fahrenheit", "degrees Fahrenheit"),
    "°": ("degree", "degrees"),
    "KB": ("kilobyte", "kilobytes"),
    "kB": ("kilobyte", "kilobytes"),
    "MB": ("megabyte", "megabytes"),
    "GB": ("gigabyte", "gigabytes"),
    "TB": ("terabyte", "terabytes"),
    "Mbps": ("megabit per second", "megabits per second"),
    "Gbps": ("gigabit per second", "gigabits per second"),
    "Hz": ("hertz", "hertz"),
    "kHz": ("kilohertz", "kilohertz"),
    "MHz": ("megahertz", "megahertz"),
    "GHz": ("gigahertz", "gigahertz"),
    "ms": ("millisecond", "milliseconds"),
    "min": ("minute", "minutes"),
    "hr": ("hour", "hours"),
    "hrs": ("hour", "hours"),
    "W": ("watt", "watts"),
    "kW": ("kilowatt", "kilowatts"),
    "kWh": ("kilowatt hour", "kilowatt hours"),
    "V": ("volt", "volts"),
    "mAh": ("milliamp hour", "milliamp hours"),
}

# Abbreviations read as a title before a name, or as a place/suffix after one.
_TITLES = {
    "Dr": "Doctor",
    "St": "Saint",
    "Mr": "Mister",
    "Mrs": "Missus",
    "Ms": "Miz",
    "Prof": "Professor",
    "Capt": "Captain",
    "Gov": "Governor",
    "Sen": "Senator",
    "Rep": "Representative",
    "Lt": "Lieutenant",
    "Sgt": "Sergeant",
    "Rev": "Reverend",
    "Mt": "Mount",
    "Ft": "Fort",
}
_BARE_TITLES = frozenset({"Dr", "Mr", "Mrs", "Ms"})
_EXPANSIONS = {
    "St": "Street",
    "Dr": "Drive",
    "Ave": "Avenue",
    "Rd": "Road",
    "Blvd": "Boulevard",
    "Ln": "Lane",
    "Jr": "Junior",
    "Sr": "Senior",
    "etc": "et cetera",
    "vs": "versus",
    "e.g": "for example",
    "i.e": "that is",
    "approx": "approximately",
    "Inc": "Incorporated",
    "Ltd": "Limited",
    "Corp": "Corporation",
    "Dept": "Department",
}
_ABBREVIATION = re.compile(
    r"(?<![\w.])(?P<abbr>"
    + "|".join(re.escape(a) for a in sorted(_TITLES.keys() | _EXPANSIONS.keys(), key=len, reverse=True))
    + r")(?P<dot>\.)?(?=[\s,;:!?)]|$)"
)

_URL_SYMBOLS = {
    ".": "dot",
    "/": "slash",
    "-": "dash",
    "_": "underscore",
    "@": "at",
    ":": "colon",
    "?": "question mark",
    "=": "equals",
    "&": "and",
    "#": "hash",
    "~": "tilde",
    "+": "plus",
    "%": "percent",
}
_TLDS = "com|org|net|edu|gov|io|ai|dev|app|co|uk|de|fr|eu|info|biz|me|tv|us|ca"
_URL = re.compile(
    r"(?:https?://|www\.)[^\s<>\"']*[^\s<>\"'.,;:!?)]"
    r"|[\w.+-]+@[\w-]+(?:\.[\w-]+)*\.[A-Za-z]{2,}"
    rf"|(?<![\w@.])[\w-]+(?:\.[\w-]+)*\.(?:{_TLDS})\b(?:/[^\s<>\"']*[^\s<>\"'.,;:!?)])?"
)
# Units read after "per" or a slash ("per yr.", "/mo"), singular, beside those of `_UNITS`.
_RATE_UNITS: dict[str, str] = {
    "yr": "year",
    "year": "year",
    "mo": "month",
    "month": "month",
    "wk": "week",
    "week": "week",
    "day": "day",
    "d": "day",
    "h": "hour",
    "hr": "hour",
    "hour": "hour",
    "min": "minute",
    "sec": "second",
    "s": "second",
    "person": "person",
    "head": "head",
    "unit": "unit",
    "user": "user",
    "seat": "seat",
    "night": "night",
}
_VULGAR_FRACTIONS = {
    "½": (1, 2),
    "⅓": (1, 3),
    "⅔": (2, 3),
    "¼": (1, 4),
    "¾": (3, 4),
    "⅕": (1, 5),
    "⅖": (2, 5),
    "⅗": (3, 5),
    "⅘": (4, 5),
    "⅙": (1, 6),
    "⅚": (5, 6),
    "⅛": (1, 8),
    "⅜": (3, 8),
    "⅝": (5, 8),
    "⅞": (7, 8),
}
_SYMBOLS = {"&": "and", "@": "at", "+": "plus", "=": "equals", "%": "percent", "×": "times"}


@dataclass(frozen=True)
class _Speaker:
    """Number words in one `num2words` language."""

    lang: str

    def _say(self, value: int, to: str = "cardinal") -> str:
        # num2words groups with commas, which the segmenter would take for clause ends.
        words = str(num2words(value, lang=self.lang, to=to)).replace(",", "")
        if self.lang.startswith("en"):
            words = words.replace(" and ", " ")
        return words

    def cardinal(self, value: int) -> str:
        return self._say(value)

    def ordinal(self, value: int) -> str:
        return self._say(value, "ordinal")

    def year(self, value: int) -> str:
        return self._say(value, "year")

    def digits(self, run: str) -> str:
        return " ".join(self.cardinal(int(d)) for d in run if d.isdigit())

    def number(self, token: str) -> str:
        """A cardinal or a decimal as written: "1,234.50" -> "... point five zero"."""
        whole, _, fraction = token.replace(",", "").partition(".")
        words = self.cardinal(int(whole))
        if fraction:
            words += f" {CONVERTER_CLASSES[self.lang].pointword} {self.digits(fraction)}"
        return words


def normalize(text: str, language: str = "en") -> str:
    """`text` with written forms spelled out as words for `language` (ISO 639-1, "auto" = English)."""
    return normalize_aligned(text, language).text


@dataclass(frozen=True)
class Normalized:
    """Normalized text, and for each of its characters the span of the original text it came from."""

    text: str
    starts: tuple[int, ...]
    ends: tuple[int, ...]

    def origin(self, start: int, end: int) -> tuple[int, int]:
        """The span of the original text that the normalized characters `start:end` came from."""
        if start >= end:
            return self.starts[start], self.starts[start]
        return min(self.starts[start:end]), max(self.ends[start:end])


class _Tracked:
    """Text being rewritten, with each character's original span (built lazily: most rules match nothing)."""

    def __init__(self, text: str, offset: int) -> None:
        self.text = text
        self._offset = offset
        self._starts: list[int] | None = None
        self._ends: list[int] | None = None

    def sub(self, pattern: re.Pattern[str], replace: Callable[[re.Match[str]], str] | str) -> None:
        pieces: list[tuple[int, int, str]] = []

        def record(match: re.Match[str]) -> str:
            reading = replace(match) if callable(replace) else match.expand(replace)
            pieces.append((match.start(), match.end(), reading))
            return reading

        rewritten = pattern.sub(record, self.text)
        if not pieces:
            return
        starts, ends = self._spans()
        new_starts: list[int] = []
        new_ends: list[int] = []
        done = 0
        for start, end, reading in pieces:
            new_starts += starts[done:start]
            new_ends += ends[done:start]
            if start < end:
                span = (min(starts[start:end]), max(ends[start:end]))
            else:  # an insertion: it belongs where it was inserted
                at = starts[start] if start < len(starts) else (ends[-1] if ends else self._offset)
                span = (at, at)
            new_starts += [span[0]] * len(reading)
            new_ends += [span[1]] * len(reading)
            done = end
        new_starts += starts[done:]
        new_ends += ends[done:]
        self.text, self._starts, self._ends = rewritten, new_starts, new_ends

    def _spans(self) -> tuple[list[int], list[int]]:
        if self._starts is None or self._ends is None:
            self._starts = [self._offset + i for i in range(len(self.text))]
            self._ends = [self._offset + i + 1 for i in range(len(self.text))]
        return self._starts, self._ends

    def strip(self) -> None:
        starts, ends = self._spans()
        lead = len(self.text) - len(self.text.lstrip())
        keep = len(self.text.rstrip()) if self.text.strip() else lead
        self.text, self._starts, self._ends = self.text[lead:keep], starts[lead:keep], ends[lead:keep]

    def around(self, lead: str, trail: str, text_end: int) -> Normalized:
        """The result, with `lead` and `trail` whitespace (the original's first and last characters) kept."""
        starts, ends = self._spans()
        lead_spans = list(range(len(lead)))
        trail_spans = list(range(text_end - len(trail), text_end))
        return Normalized(
            text=f"{lead}{self.text}{trail}",
            starts=(*lead_spans, *starts, *trail_spans),
            ends=(*(i + 1 for i in lead_spans), *ends, *(i + 1 for i in trail_spans)),
        )


_SPACE_RUNS = re.compile(r"[ \t]{2,}")
_SPACE_BEFORE_PUNCTUATION = re.compile(r" +(?=[.,!?;:)])")


def normalize_aligned(text: str, language: str = "en") -> Normalized:
    """`normalize(text, language)`, with the original span of each character of the result."""
    lead = text[: len(text) - len(text.lstrip())]
    trail = text[len(text.rstrip()) :] if text.strip() else ""
    body = _Tracked(text.strip(), len(lead))
    if body.text:
        for pattern, replace in _rules(_num2words_language(language)):
            body.sub(pattern, replace)
        body.sub(_SPACE_RUNS, " ")
        body.sub(_SPACE_BEFORE_PUNCTUATION, "")
        body.strip()
    return body.around(lead, trail, len(text))


def number_words(language: str) -> _Speaker:
    """How numbers are said in `language` (English where `num2words` does not know it)."""
    return _Speaker(_num2words_language(language))


def _num2words_language(language: str) -> str:
    code = language.replace("-", "_")
    for candidate in (code, code.split("_")[0].lower()):
        if candidate in CONVERTER_CLASSES:
            return candidate
    return "en"


@cache
def _rules(lang: str) -> tuple[Rule, ...]:
    speaker = _Speaker(lang)
    return _english_rules(speaker) if lang.startswith("en") else _other_rules(speaker)


def _ends_sentence(text: str, pos: int) -> bool:
    """Whether a period just before `pos` also ends a sentence (end of text, or a capital follows)."""
    rest = text[pos:]
    following = rest.lstrip()
    return not following or (rest[:1].isspace() and following[0].isupper())


def _follows_name(before: str) -> bool:
    """Whether `before` ends with a capitalized word (not sentence-initial) or a number: "Main", "5th"."""
    tokens = before.rsplit(None, 2)
    if not tokens or before[-1:] not in (" ", "\t", "\n"):
        return False
    word = tokens[-1]
    if word[0].isdigit():
        return True
    sentence_initial = len(tokens) == 1 or tokens[-2][-1] in ".!?…"
    return word[0].isupper() and not sentence_initial


def _english_rules(say: _Speaker) -> tuple[Rule, ...]:
    def url(m: re.Match[str]) -> str:
        address = re.sub(r"^https?://", "", m[0]).rstrip("/")
        words: list[str] = []
        for token in re.findall(r"[^\W\d_]+|\d+|\S", address):
            if token.isdigit():
                words.append(say.digits(token))
            elif token.lower() == "www":
                words.append("w w w")
            else:
                words.append(_URL_SYMBOLS.get(token, token))
        return " ".join(words)

    def abbreviation(m: re.Match[str]) -> str:
        abbr, dotted = m["abbr"], m["dot"] is not None
        next_is_name = re.match(r"\s+[A-Z]", m.string[m.end() :]) is not None
        if not dotted and not (abbr in _BARE_TITLES and next_is_name):
            return m[0]
        if abbr in _TITLES and abbr in _EXPANSIONS:
            place = _follows_name(m.string[: m.start()]) or (not next_is_name and abbr == "St")
        else:
            place = abbr not in _TITLES
        reading = _EXPANSIONS[abbr] if place else _TITLES[abbr]
        # A title's period is kept only where it ends the text; before a name it is no sentence end.
        keeps_period = dotted and _ends_sentence(m.string, m.end()) and (place or not next_is_name)
        return f"{reading}." if keeps_period else reading

    def phone(m: re.Match[str]) -> str:
        body_groups = re.findall(r"\d+", m["body"])
        digit_count = sum(len(g) for g in body_groups)
        if not (m["cc"] or m["area"]) and (m["sep"] == " " or digit_count < 7):
            return m[0]
        groups = [say.digits(g) for g in body_groups]
        if m["area"]:
            groups.insert(0, say.digits(m["area"]))
        if m["cc"]:
            groups.insert(0, f"plus {say.digits(m['cc'])}")
        return ", ".join(groups)

    def month_day(month: int, day: int, year: str | None, day_first: bool = False) -> str:
        name, nth = _MONTHS[month - 1], say.ordinal(day)
        words = f"the {nth} of {name}" if day_first else f"{name} {nth}"
        return f"{words}, {say.year(int(year))}" if year else words

    def iso_date(m: re.Match[str]) -> str:
        year, month, day = int(m[1]), int(m[2]), int(m[3])
        if not _valid_date(month, day):
            return m[0]
        return month_day(month, day, str(year))

    def named_date(m: re.Match[str]) -> str:
        month = _MONTH_NUMBERS[m["month"].lower()]
        day = int(m["day"])
        if not _valid_date(month, day):
            return m[0]
        return month_day(month, day, m["year"], day_first=m.groupdict().get("first") is not None)

    def slash(m: re.Match[str]) -> str:
        a, b, year = int(m["a"]), int(m["b"]), m["year"]
        if year is not None:
            if len(year) == 2:
                year = f"{20 if int(year) < 70 else 19}{year}"
            month, day = (b, a) if a > 12 else (a, b)
            return month_day(month, day, year) if _valid_date(month, day) else m[0]
        if 0 < a < b <= 10:
            return fraction(a, b)
        if _valid_date(a, b):
            return month_day(a, b, None)
        return f"{say.cardinal(a)} slash {say.cardinal(b)}"

    def fraction(numerator: int, denominator: int) -> str:
        name = {2: "half", 4: "quarter"}.get(denominator) or say.ordinal(denominator)
        if numerator > 1:
            name = "halves" if name == "half" else f"{name}s"
        return f"{say.cardinal(numerator)} {name}"

    def meridiem(m: re.Match[str]) -> str:
        # Capitals: the voice spells "AM" as letters, while "a m" reads as the article "a".
        word = f"{m['ampm'].upper()}M"
        return f"{word}." if m[0].endswith(".") and _ends_sentence(m.string, m.end()) else word

    def clock(m: re.Match[str]) -> str:
        hour, minute = int(m["h"]), int(m["m"])
        if (
            m["s"]
            and len(m["h"]) == 1
            and not m["ampm"]
            and not _TIME_OF_DAY_BEFORE.search(m.string, max(0, m.start() - 12), m.start())
        ):
            return duration(hour, minute, int(m["s"]))
        words = say.cardinal(hour)
        if minute:
            words += f" oh {say.cardinal(minute)}" if minute < 10 else f" {say.cardinal(minute)}"
        elif not m["ampm"]:
            words += " hundred" if hour == 0 or hour > 12 else " o'clock"
        if m["s"]:
            seconds = int(m["s"])
            words += f" and {say.cardinal(seconds)} second{'s' if seconds != 1 else ''}"
        return f"{words} {meridiem(m)}" if m["ampm"] else words

    def duration(hours: int, minutes: int, seconds: int) -> str:
        amounts = ((hours, "hour"), (minutes, "minute"), (seconds, "second"))
        said = [f"{say.cardinal(n)} {name}{'s' if n != 1 else ''}" for n, name in amounts if n]
        if not said:
            return "zero seconds"
        return said[0] if len(said) == 1 else f"{', '.join(said[:-1])} and {said[-1]}"

    def hour(m: re.Match[str]) -> str:
        return f"{say.cardinal(int(m['h']))} {meridiem(m)}"

    def money(m: re.Match[str]) -> str:
        code = m.groupdict().get("code") or _CURRENCY_SYMBOLS[m["symbol"]]
        (one, many), minor = _CURRENCIES[code]
        amount = m["num"].replace(",", "")
        scale = m["scale"] or _SCALES.get(m["suffix"] or "")
        if scale:
            return f"{say.number(amount)} {scale} {many}"
        whole, _, fraction_digits = amount.partition(".")
        major = int(whole)
        cents = int((fraction_digits + "00")[:2]) if minor else 0
        parts = []
        if major or not cents:
            parts.append(f"{say.cardinal(major)} {one if major == 1 else many}")
        if cents and minor:
            parts.append(f"{say.cardinal(cents)} {minor[0] if cents == 1 else minor[1]}")
        return " and ".join(parts)

    def unit(m: re.Match[str]) -> str:
        one, many = _UNITS[m["unit"].replace(" ", "")]
        reading = f"{say.number(m['num'])} {one if m['num'] == '1' else many}"
        return f"{reading}." if m["dot"] and _ends_sentence(m.string, m.end()) else reading

    def decade(m: re.Match[str]) -> str:
        words = say.year(int(m[1]))
        return f"{words[:-1]}ies" if words.endswith("y") else f"{words}s"

    def digit_run(m: re.Match[str]) -> str:
        groups = [m[0][i : i + 3] for i in range(0, len(m[0]), 3)]
        if len(groups) > 1 and len(groups[-1]) == 1:
            groups[-2:] = [groups[-2] + groups[-1]]
        return ", ".join(say.digits(g) for g in groups)

    def mixed(whole: str | None, numerator: int, denominator: int) -> str | None:
        if not 0 < numerator < denominator:
            return None
        reading = fraction(numerator, denominator)
        if whole is None:
            return reading
        if numerator == 1:
            reading = "a " + reading.removeprefix("one ")
        return f"{say.number(whole)} and {reading}"

    def mixed_number(m: re.Match[str]) -> str:
        return mixed(m["whole"], int(m["n"]), int(m["d"])) or m[0]

    def vulgar(m: re.Match[str]) -> str:
        return mixed(m["whole"], *_VULGAR_FRACTIONS[m["f"]]) or m[0]

    def rate(m: re.Match[str]) -> str:
        unit_word = _RATE_UNITS.get(m["unit"]) or _UNITS[m["unit"]][0]
        reading = f"{' ' if m['lead'] == '/' else ''}per {unit_word}"
        return f"{reading}." if m["dot"] and _ends_sentence(m.string, m.end()) else reading

    def version(m: re.Match[str]) -> str:
        parts = m["v"].split(".")
        if len(parts) == 4 and all(len(p) <= 3 and int(p) <= 255 for p in parts):
            return " dot ".join(say.digits(p) for p in parts)
        if len(parts) == 3 and len(parts[2]) == 4 and all(len(p) <= 2 for p in parts[:2]):
            if _valid_date(int(parts[1]), int(parts[0])):
                return month_day(int(parts[1]), int(parts[0]), parts[2], day_first=True)
        if not m["prefix"] and len(parts) == 3 and len(parts[2]) == 4 and all(len(p) >= 2 for p in parts):
            return m[0]  # a phone number ("555.867.5309"): the phone rule reads it
        words = " point ".join(say.cardinal(int(p)) for p in parts)
        prefix = m["prefix"] or ""
        return f"{'version ' if prefix in ('v', 'V') else prefix}{words}"

    units = "|".join(re.escape(u) for u in sorted(_UNITS, key=len, reverse=True))
    rate_units = "|".join(re.escape(u) for u in sorted(_RATE_UNITS.keys() | _UNITS.keys(), key=len, reverse=True))
    units = units.replace("°", "°\\s?")
    codes = "|".join(_CURRENCIES)
    symbols = "".join(re.escape(s) for s in _CURRENCY_SYMBOLS)
    ampm = r"\s?(?P<ampm>[aApP])\.?[mM]\.?(?!\w)"
    return (
        (_URL, url),
        (
            re.compile(rf"(?P<lead>\bper\s+|(?<=[\w%])/)(?P<unit>{rate_units})(?P<dot>\.)?(?![\w/°])"),
            rate,
        ),
        (_ABBREVIATION, abbreviation),
        (re.compile(r"\b[Nn]o\.\s?(?=\d)"), lambda m: f"{m[0][0]}umber "),
        (re.compile(r"#\s?(?=\d)"), lambda m: "number "),
        (re.compile(r"(?<![\w-])(\d{4})-(\d{2})-(\d{2})(?![\w-])"), iso_date),
        (
            re.compile(
                r"(?<![\w.,])(?P<prefix>(?:[vV]|[Vv]ersion\s))?(?P<v>\d+(?:\.\d+){2,}|(?<=[vV])\d+\.\d+"
                r"|(?<=[Vv]ersion\s)\d+\.\d+)(?![\w.]\w|\.\d)"
            ),
            version,
        ),
        (
            re.compile(
                r"(?<![\w+])(?:(?P<cc>\+\d{1,3})[ .-]?)?(?:\((?P<area>\d{2,4})\)[ .-]?)?"
                r"(?P<body>\d{1,4}(?P<sep>[ .-])\d{2,4}(?:(?P=sep)\d{2,4}){0,4})(?!\w|[.-]\d)"
            ),
            phone,
        ),
        (
            re.compile(
                rf"\b(?P<month>{_MONTH_NAME})\.?\s(?P<day>\d{{1,2}})(?:st|nd|rd|th)?\b"
                r"(?:,?\s(?P<year>\d{4})\b)?"
            ),
            named_date,
        ),
        (
            re.compile(
                rf"\b(?P<first>(?P<day>\d{{1,2}})(?:st|nd|rd|th)?\s(?:of\s)?)(?P<month>{_MONTH_NAME})\b"
                r"(?:,?\s(?P<year>\d{4})\b)?"
            ),
            named_date,
        ),
        (re.compile(r"(?<![\w.,/])(?P<whole>\d+)\s(?P<n>\d{1,2})/(?P<d>\d{1,2})(?![\w/]|\.\d)"), mixed_number),
        (re.compile(rf"(?<![\w.,])(?P<whole>\d+)?\s?(?P<f>[{''.join(_VULGAR_FRACTIONS)}])"), vulgar),
        (
            re.compile(r"(?<![\w/.])(?P<a>\d{1,2})/(?P<b>\d{1,2})(?:/(?P<year>\d{4}|\d{2}))?(?![\w/]|\.\d)"),
            slash,
        ),
        (
            re.compile(rf"(?<![\w:.])(?P<h>[01]?\d|2[0-3]):(?P<m>[0-5]\d)(?::(?P<s>[0-5]\d))?(?:{ampm})?"),
            clock,
        ),
        (re.compile(rf"(?<![\w:.])(?P<h>1[0-2]|0?[1-9]){ampm}"), hour),
        (
            re.compile(rf"(?P<symbol>[{symbols}])(?P<a>{_NUM})\s?[-–]\s?(?P=symbol)?(?P<b>{_NUM}){_AFTER}"),
            lambda m: f"{m['a']} to {m['symbol']}{m['b']}",
        ),
        (
            re.compile(rf"{_BEFORE}(?P<a>{_NUM})(?:-|\s?–\s?)(?P<b>{_NUM}){_AFTER}"),
            lambda m: f"{m['a']} to {m['b']}",
        ),
        (re.compile(r"(?:^|(?<=[\s(]))[-−](?=\d)"), lambda m: "minus "),
        (re.compile(rf"(?P<symbol>[{symbols}])\s?(?P<num>{_NUM}){_SCALE}?"), money),
        (re.compile(rf"{_BEFORE}(?P<num>{_NUM}){_SCALE}?\s?(?P<code>{codes})\b"), money),
        (re.compile(rf"{_BEFORE}(?P<num>{_NUM})\s?%"), lambda m: f"{say.number(m['num'])} percent"),
        (re.compile(rf"{_BEFORE}(?P<num>{_NUM})\s?(?P<unit>{units})(?P<dot>(?<=[a-z])\.)?(?![\w/])"), unit),
        (re.compile(r"(?<![\w.,])(\d+)(?:st|nd|rd|th)\b"), lambda m: say.ordinal(int(m[1]))),
        (re.compile(r"(?<![\w.,])(\d{3}0)s\b"), decade),
        (re.compile(r"(?<![\w.,])(1[1-9]\d\d|20\d\d)(?!\w|[.,]\d)"), lambda m: say.year(int(m[1]))),
        (re.compile(r"(?<![\w.,])(?:0\d+|\d{10,})(?!\w|[.,]\d)"), digit_run),
        (re.compile(rf"(?<!\d)(?:{_NUM})"), lambda m: _spaced(m, say.number(m[0]))),
        (re.compile(r"\s*([&@+=%×])\s*"), lambda m: f" {_SYMBOLS[m[1]]} "),
        (re.compile(r"#(?=\w)"), lambda m: "hashtag "),
        (re.compile(r"~\s?(?=[^\W\d_])"), lambda m: "about "),
    )


def _other_rules(say: _Speaker) -> tuple[Rule, ...]:
    converter = CONVERTER_CLASSES[say.lang]
    symbols = "".join(re.escape(s) for s in _CURRENCY_SYMBOLS)

    def money(m: re.Match[str]) -> str:
        amount = int(m["num"])
        forms = getattr(converter, "CURRENCY_FORMS", {}).get(_CURRENCY_SYMBOLS[m["symbol"]])
        try:
            name = str(converter.pluralize(amount, forms[0])) if forms else m["symbol"]
        except NotImplementedError:
            name = m["symbol"]
        return f"{say.cardinal(amount)} {name}"

    return (
        (re.compile(rf"(?P<symbol>[{symbols}])\s?(?P<num>\d+)(?![\w.,]\d|\w)"), money),
        (re.compile(r"(?<![\w.,:/-])-?\d+(?![\w.,:/-]\d|\w)"), lambda m: say.cardinal(int(m[0]))),
    )


def _spaced(m: re.Match[str], words: str) -> str:
    """`words` in place of `m`, kept apart from letters it was glued to ("MP3" -> "MP three")."""
    before = " " if m.string[m.start() - 1 : m.start()].isalpha() else ""
    after = " " if m.string[m.end() : m.end() + 1].isalpha() else ""
    return f"{before}{words}{after}"


def _valid_date(month: int, day: int) -> bool:
    return 1 <= month <= 12 and 1 <= day <= _DAYS_IN_MONTH[month - 1]
