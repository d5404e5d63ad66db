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
    # an abbreviated unit's period is dropped unless it also ends the sentence
    ("Add 2 tbsp. of butter, 1 tsp salt.", "Add two tablespoons of butter, one teaspoon salt."),
    ("About 160 mi. in total, 3 wks.", "About one hundred sixty miles in total, three weeks."),
    ("Drive 160 mi. Then rest.", "Drive one hundred sixty miles. Then rest."),
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
    # fractions and mixed numbers
    ("Mix 2 1/2 cups with 1 1/3 cups.", "Mix two and a half cups with one and a third cups."),
    ("Walk 1 3/4 miles, then 5 7/8 more.", "Walk one and three quarters miles, then five and seven eighths more."),
    (
        "Use 3½ cups, ¼ teaspoon and 2¾ pints.",
        "Use three and a half cups, one quarter teaspoon and two and three quarters pints.",
    ),
    ("A 1/3 share and 2/3 of it.", "A one third share and two thirds of it."),
    # rates: a unit after "per" or a slash
    (
        "It costs $120 per yr. or $12 per mo.",
        "It costs one hundred twenty dollars per year or twelve dollars per month.",
    ),
    ("Pay $500 per yr. Then relax.", "Pay five hundred dollars per year. Then relax."),
    ("Rent is $900/month, or $40/day.", "Rent is nine hundred dollars per month, or forty dollars per day."),
    ("Drive 60 km per hr. at 10 MB/s.", "Drive sixty kilometers per hour at ten megabytes per second."),
    ("Dose 5 mg/kg, 3 per day, $10/hr.", "Dose five milligrams per kilogram, three per day, ten dollars per hour."),
    # ranges
    ("Wait 3-5 days, 6–8 hours.", "Wait three to five days, six to eight hours."),
    ("It costs $3-$5 or $10-20.", "It costs three to five dollars or ten to twenty dollars."),
    ("Growth of 5-10% over 2-3 yrs.", "Growth of five to ten percent over two to three years."),
    # times with seconds
    ("It ended at 4:30:15 PM.", "It ended at four thirty and fifteen seconds PM."),
    # a one-digit hour with seconds, without AM/PM or a word such as "at" before it, is a duration
    ("The record is 2:01:09.", "The record is two hours, one minute and nine seconds."),
    (
        "Lap 0:05:01 then 23:59:59.",
        "Lap five minutes and one second then twenty-three fifty-nine and fifty-nine seconds.",
    ),
    ("It ran 0:00:00, until 3:00:01.", "It ran zero seconds, until three o'clock and one second."),
    ("Logged 2024-05-03 09:15:30.", "Logged May third, twenty twenty-four nine fifteen and thirty seconds."),
    # phone numbers, digit by digit
    ("Call 555.867.5309 today.", "Call five five five, eight six seven, five three zero nine today."),
    ("Dial (800) 555-0199 now.", "Dial eight zero zero, five five five, zero one nine nine now."),
    ("Ring +33 1 42 68 53 00.", "Ring plus three three, one, four two, six eight, five three, zero zero."),
    # version numbers, addresses, dotted dates
    (
        "Upgrade to version 3.11.4 or v2.10.",
        "Upgrade to version three point eleven point four or version two point ten.",
    ),
    ("Python 3.12.1 and Version 4.0 ship.", "Python three point twelve point one and Version four point zero ship."),
    (
        "Ping 192.168.0.1 on 31.12.2023.",
        "Ping one nine two dot one six eight dot zero dot one on the thirty-first of December, twenty twenty-three.",
    ),
    # signed temperatures
    ("From -12°C to +4°C.", "From minus twelve degrees Celsius to plus four degrees Celsius."),
    ("It hit −40 °F, then +5°F.", "It hit minus forty degrees Fahrenheit, then plus five degrees Fahrenheit."),
    (
        "Water boils at 212°F, or 100 °C.",
        "Water boils at two hundred twelve degrees Fahrenheit, or one hundred degrees Celsius.",
    ),
    # currencies with minor units
    ("Pay $47.85 and €3.99.", "Pay forty-seven dollars and eighty-five cents and three euros and ninety-nine cents."),
    ("Tickets cost £8.50 or £1.01.", "Tickets cost eight pounds and fifty pence or one pound and one penny."),
    (
        "Only $0.01 or €2.5 or 3.05 CHF.",
        "Only one cent or two euros and fifty cents or three Swiss francs and five centimes.",
    ),
    ("Rs ₹10.50 and ¥1,200.", "Rs ten rupees and fifty paise and one thousand two hundred yen."),
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
