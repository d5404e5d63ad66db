"""Text normalization: a table of written forms and the exact words they become."""

from __future__ import annotations

import re

import pytest

from media_server.text.normalize import normalize
from media_server.text.segmenter import SegmenterPolicy, split_text

ENGLISH = [
    # cardinals, decimals, ordinals
    ("I have 42 apples.", "I have forty-two apples."),
    (
        "About 1,234,567 people.",
        "About one million two hundred thirty-four thousand five hundred sixty-seven people.",
    ),
    ("Pi is 3.14 and e is 2.718.", "Pi is three point one four and e is two point seven one eight."),
    ("He finished 1st, 22nd and 103rd.", "He finished first, twenty-second and one hundred third."),
    ("It was -5 degrees.", "It was minus five degrees."),
    ("Pages 10-20 and scores 3–2.", "Pages ten to twenty and scores three to two."),
    ("Version 3 of MP3 and 3D.", "Version three of MP three and three D."),
    # currency
    ("It costs $3.50 today.", "It costs three dollars and fifty cents today."),
    ("That's €20, not £1,000,000.", "That's twenty euros, not one million pounds."),
    ("Send 5 USD now.", "Send five dollars now."),
    ("He won $1 and $0.99.", "He won one dollar and ninety-nine cents."),
    ("It's $5 million or $3.5B.", "It's five million dollars or three point five billion dollars."),
    ("A fee of ¥500 or 20 CAD.", "A fee of five hundred yen or twenty Canadian dollars."),
    # percentages
    ("Growth was 3.5% and 50%.", "Growth was three point five percent and fifty percent."),
    # times
    ("Meet at 3:30 pm. Then leave.", "Meet at three thirty PM. Then leave."),
    ("The train leaves at 14:05 and 14:00.", "The train leaves at fourteen oh five and fourteen hundred."),
    ("We open at 9 a.m. on Monday.", "We open at nine AM on Monday."),
    ("Wake at 7 AM, sleep at 11pm.", "Wake at seven AM, sleep at eleven PM."),
    ("It is 3:00 pm, or 3:00.", "It is three PM, or three o'clock."),
    ("Meet at 10:30:15.", "Meet at ten thirty and fifteen seconds."),
    # dates and years
    ("Born on 2024-03-05 in town.", "Born on March fifth, twenty twenty-four in town."),
    ("On March 5, 2024 it rained.", "On March fifth, twenty twenty-four it rained."),
    ("On 5 March 2024 it rained.", "On the fifth of March, twenty twenty-four it rained."),
    ("Due Jan. 3rd.", "Due January third."),
    ("You may 5 times on May 5.", "You may five times on May fifth."),
    ("Due 5/3, or 12/25/2023.", "Due May third, or December twenty-fifth, twenty twenty-three."),
    (
        "Paid 25/12/2023 and 5/3/99.",
        "Paid December twenty-fifth, twenty twenty-three and May third, nineteen ninety-nine.",
    ),
    (
        "Add 1/2 cup and 3/4 cup, open 24/7.",
        "Add one half cup and three quarters cup, open twenty-four slash seven.",
    ),
    ("In 1999 and 2005 and 2024.", "In nineteen ninety-nine and two thousand five and twenty twenty-four."),
    ("The 1990s and 2000s were loud.", "The nineteen nineties and two thousands were loud."),
    ("The year 1066 matters.", "The year one thousand sixty-six matters."),
    # phone numbers and digit runs
    (
        "Call 555-123-4567 or +1 (555) 123-4567.",
        "Call five five five, one two three, four five six seven or plus one, five five five, one two three, "
        "four five six seven.",
    ),
    (
        "Dial +44 20 7946 0958 please.",
        "Dial plus four four, two zero, seven nine four six, zero nine five eight please.",
    ),
    (
        "Agent 007 and id 12345678901.",
        "Agent zero zero seven and id one two three, four five six, seven eight nine, zero one.",
    ),
    # abbreviations and titles
    ("Dr. Smith lives on Main St. He is nice.", "Doctor Smith lives on Main Street. He is nice."),
    (
        "St. Louis is far. Meet Dr. Jones at 221 Baker St.",
        "Saint Louis is far. Meet Doctor Jones at two hundred twenty-one Baker Street.",
    ),
    ("Apples, pears, etc. Then more.", "Apples, pears, et cetera. Then more."),
    ("Use e.g. apples vs. pears.", "Use for example apples versus pears."),
    ("Mr Smith and Mrs. Brown.", "Mister Smith and Missus Brown."),
    ("No. 5 is here.", "Number five is here."),
    ("I saw the Dr.", "I saw the Doctor."),
    # units
    ("It was 5 km away and 1 km wide.", "It was five kilometers away and one kilometer wide."),
    ("It's 20°C or -5 °C outside.", "It's twenty degrees Celsius or minus five degrees Celsius outside."),
    ("Drive 60 mph with 100 MB.", "Drive sixty miles per hour with one hundred megabytes."),
    ("Wait 10 ms for 2.5 GB.", "Wait ten milliseconds for two point five gigabytes."),
    # URLs, e-mail, symbols
    (
        "Visit https://www.example.com/docs or example.org.",
        "Visit w w w dot example dot com slash docs or example dot org.",
    ),
    ("Mail john.doe@example.com today.", "Mail john dot doe at example dot com today."),
    (
        "Tom & Jerry @ home, 2+2=4, #1 and #hashtag.",
        "Tom and Jerry at home, two plus two equals four, number one and hashtag hashtag.",
    ),
    ("Plain words stay as they are.", "Plain words stay as they are."),
]

OTHER_LANGUAGES = [
    ("fr", "Le prix est 20 € et 5 pommes, 3,5 kg.", "Le prix est vingt € et cinq pommes, 3,5 kg."),
    ("de", "Es kostet €20 heute.", "Es kostet zwanzig Euro heute."),
    ("es", "Tengo 21 años y -3 euros.", "Tengo veintiuno años y menos tres euros."),
    ("ru", "12 яблок", "двенадцать яблок"),
    ("en-US", "I have 3 cats.", "I have three cats."),
    # No num2words support (zh) and "auto" fall back to English rules.
    ("zh", "我有 100 个", "我有 one hundred 个"),
    ("auto", "It costs $5.", "It costs five dollars."),
]


@pytest.mark.parametrize(("text", "expected"), ENGLISH)
def test_english(text: str, expected: str) -> None:
    assert normalize(text) == expected


@pytest.mark.parametrize(("language", "text", "expected"), OTHER_LANGUAGES)
def test_other_languages(language: str, text: str, expected: str) -> None:
    assert normalize(text, language) == expected


def test_the_table_is_large_enough() -> None:
    assert len(ENGLISH) + len(OTHER_LANGUAGES) >= 40


@pytest.mark.parametrize(("text", "expected"), ENGLISH)
def test_english_output_has_no_digits_and_is_stable(text: str, expected: str) -> None:
    assert not re.search(r"\d", expected)
    assert normalize(expected) == expected


def test_sentence_ends_survive_for_the_segmenter() -> None:
    text = "Dr. Smith paid $3.50 at 3:30 p.m. He lives at 221 Baker St. Call 555-123-4567, e.g. today."
    sentences_only = SegmenterPolicy(first_segment_words=1000, min_clause_chars=10_000, max_chars=10_000)
    assert split_text(normalize(text), sentences_only) == [
        "Doctor Smith paid three dollars and fifty cents at three thirty PM.",
        "He lives at two hundred twenty-one Baker Street.",
        "Call five five five, one two three, four five six seven, for example today.",
    ]


def test_a_number_cut_in_half_reads_as_the_pieces_it_looks_like() -> None:
    assert normalize("It costs $3.") == "It costs three dollars."
    assert normalize("1,0") == "one,zero"
    assert normalize("00") == "zero zero"


def test_surrounding_whitespace_is_kept_for_fragments() -> None:
    assert normalize("  take 5 ") == "  take five "
    assert normalize("   ") == "   "
    assert normalize("") == ""
