"""SSML: the hardened parser, every element of the subset as runs and pauses, say-as readings, and the text a
backend is given (normalized words, phoneme blocks), checked exactly."""

from __future__ import annotations

import re

import pytest

from media_server.errors import InvalidSsml
from media_server.text import spoken
from media_server.text.lexicon import Lexicon, rules_from_json
from media_server.text.say_as import read_as
from media_server.text.segmenter import split_text
from media_server.text.spoken import spoken_text
from media_server.text.ssml import (
    MAX_DEPTH,
    MAX_ELEMENTS,
    Pause,
    Phoneme,
    Run,
    SayAs,
    Sub,
    Text,
    flatten,
    fragment,
    parse,
)


def runs(document: str) -> list[Run | Pause]:
    return flatten(parse(document))


def said(document: str, phonemes: bool = True) -> str:
    return spoken_text(document, True, "en", phonemes).said.text


@pytest.mark.parametrize(
    ("document", "where", "what"),
    [
        ("<speak>Hello <b>there</speak>", "line 1, column 24", "mismatched tag"),
        ("Hello & goodbye", "line 1, column 8", "not well-formed"),
        ("<speak>&lol;</speak>", "line 1, column 8", "undefined entity"),
        ('<?xml version="1.0"?>\n<!DOCTYPE speak [<!ENTITY a "aaaa">]>\n<speak>&a;</speak>', "line 2", "DOCTYPE"),
        ('<!DOCTYPE speak SYSTEM "file:///etc/passwd"><speak/>', "line 1", "DOCTYPE"),
        ("<speak>one</speak><speak>two</speak>", "line 1, column 19", "junk after document element"),
        ("<speak>" + "<p>" * (MAX_DEPTH + 1) + "x", "line 1", f"deeper than {MAX_DEPTH}"),
        ("<speak>" + "<mark/>" * (MAX_ELEMENTS + 1) + "</speak>", "line 1", f"more than {MAX_ELEMENTS}"),
    ],
)
def test_malformed_or_dangerous_ssml_is_refused_naming_the_position(document: str, where: str, what: str) -> None:
    with pytest.raises(InvalidSsml, match="^ssml: ") as refused:
        parse(document)
    assert where in refused.value.message and what in refused.value.message
    assert refused.value.code == "invalid_ssml" and refused.value.status == 400


def test_a_billion_laughs_never_expands() -> None:
    lol = '<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]>'
    with pytest.raises(InvalidSsml, match="DOCTYPE"):
        parse(lol + "<speak>&lol2;</speak>")


def test_text_without_speak_is_read_as_if_it_had_it_and_columns_are_the_users() -> None:
    assert runs("Hi <break/> there") == [
        Run((Text("Hi "),), None, 1.0, None, "line 1, column 1"),
        Pause(0.4),
        Run((Text(" there"),), None, 1.0, None, "line 1, column 1"),
    ]
    with pytest.raises(InvalidSsml, match="line 1, column 4:"):
        parse('Hi <break time="soon"/>').children and runs('Hi <break time="soon"/>')


@pytest.mark.parametrize(
    ("element", "seconds"),
    [
        ('<break time="500ms"/>', 0.5),
        ('<break time="1.5s"/>', 1.5),
        ('<break time=" 20 ms "/>', 0.02),
        ("<break/>", 0.4),
        ('<break strength="none"/>', 0.0),
        ('<break strength="x-weak"/>', 0.1),
        ('<break strength="weak"/>', 0.25),
        ('<break strength="strong"/>', 0.75),
        ('<break strength="x-strong"/>', 1.2),
        ('<break strength="weak" time="2s"/>', 2.0),
    ],
)
def test_break_is_a_pause_of_exactly_its_time(element: str, seconds: float) -> None:
    assert [part for part in runs(f"<speak>a{element}b</speak>") if isinstance(part, Pause)] == [Pause(seconds)]


@pytest.mark.parametrize(
    ("element", "message"),
    [
        ('<break time="11s"/>', "outside [0, 10] s"),
        ('<break time="fast"/>', "not like 500ms"),
        ('<break strength="loud"/>', "not one of none, x-weak"),
        ('<prosody rate="zippy">x</prosody>', "prosody rate 'zippy'"),
        ('<prosody rate="-100%">x</prosody>', "not a positive rate"),
        ('<say-as interpret-as="expletive">x</say-as>', "interpret-as 'expletive'"),
        ("<say-as>x</say-as>", "needs a non-empty interpret-as"),
        ("<sub>x</sub>", "needs a non-empty alias"),
        ('<phoneme alphabet="x-sampa" ph="t@">x</phoneme>', "alphabet 'x-sampa' is not supported"),
        ('<phoneme ph="">x</phoneme>', "needs a non-empty ph"),
        ('<phoneme ph="a]] [[b">x</phoneme>', "']' is not an IPA letter"),
        ('<voice xml:lang="not a language">x</voice>', "not a language code"),
    ],
)
def test_a_bad_attribute_is_refused_naming_it_and_where(element: str, message: str) -> None:
    with pytest.raises(InvalidSsml, match="ssml: line 1, column 9: ") as refused:
        runs(f"<speak>a{element}</speak>")
    assert message in refused.value.message


def test_breaks_of_one_request_add_up_to_a_bounded_total() -> None:
    with pytest.raises(InvalidSsml, match="add up to over 60 s"):
        runs("<speak>" + '<break time="10s"/>' * 7 + "x</speak>")


def test_prosody_voice_and_language_make_runs_and_rates_multiply() -> None:
    document = (
        '<speak xml:lang="en-US">One <prosody rate="slow">two <prosody rate="200%">three</prosody></prosody> '
        '<voice name="amelie" xml:lang="fr">quatre</voice> <lang xml:lang="de">fünf</lang>'
        '<prosody rate="+20%">six</prosody><prosody rate="1.1" pitch="high">seven</prosody></speak>'
    )
    got = [(part.spoken, part.voice, part.rate, part.language) for part in runs(document) if isinstance(part, Run)]
    assert got == [
        ("One ", None, 1.0, "en-US"),
        ("two ", None, 0.75, "en-US"),
        ("three", None, 1.5, "en-US"),
        (" ", None, 1.0, "en-US"),
        ("quatre", "amelie", 1.0, "fr"),
        (" ", None, 1.0, "en-US"),
        ("fünf", None, 1.0, "de"),
        ("six", None, 1.2, "en-US"),
        ("seven", None, 1.1, "en-US"),
    ]


def test_named_rates() -> None:
    rates = [
        part.rate
        for part in runs("".join(f'<prosody rate="{r}">x</prosody>' for r in ("x-slow", "medium", "fast", "x-fast")))
        if isinstance(part, Run)
    ]
    assert rates == [0.5, 1.0, 1.25, 1.75]


def test_inline_elements_unknown_elements_and_sentence_boundaries() -> None:
    document = (
        '<speak><p><s>I met <sub alias="the World Wide Web Consortium">W3C</sub></s><s>Then <emphasis>left'
        '</emphasis> at <say-as interpret-as="time">9:05</say-as></s></p>'
        '<audio src="https://x.example/a.mp3">a bell</audio><mark name="m"/>'
        '<phoneme alphabet="ipa" ph="təˈmɑːtoʊ">tomato</phoneme></speak>'
    )
    [run] = runs(document)
    assert isinstance(run, Run)
    assert run.inlines == (
        Text("I met "),
        Sub("the World Wide Web Consortium", "W3C"),
        Text(". "),
        Text("Then "),
        Text("left"),
        Text(" at "),
        SayAs("time", None, "9:05"),
        Text(". "),
        Text(" "),
        Text("a bell"),
        Phoneme("təˈmɑːtoʊ", "tomato"),
    )
    # What the engine core reads back from a fragment is the same content.
    [again] = runs(fragment(run.inlines))
    assert isinstance(again, Run) and fragment(again.inlines) == fragment(run.inlines)
    assert again.spoken == run.spoken


@pytest.mark.parametrize(
    ("kind", "form", "text", "words"),
    [
        ("characters", None, "IBM", "I, B, M"),
        ("characters", None, "a-1", "A, dash, one"),
        ("cardinal", None, "1,234.5", "one thousand two hundred thirty-four point five"),
        ("cardinal", None, "1999", "one thousand nine hundred ninety-nine"),
        ("cardinal", None, "-12", "minus twelve"),
        ("ordinal", None, "3rd", "third"),
        ("ordinal", None, "21", "twenty-first"),
        ("digits", None, "2024", "two zero two four"),
        ("date", "mdy", "05/03/2024", "May third, twenty twenty-four"),
        ("date", "dmy", "31.12.99", "December thirty-first, nineteen ninety-nine"),
        ("date", "ymd", "2024-03-05", "March fifth, twenty twenty-four"),
        ("date", "md", "3/4", "March fourth"),
        ("date", "y", "1999", "nineteen ninety-nine"),
        ("time", None, "14:30", "fourteen thirty"),
        ("time", None, "4:30:15 PM", "four thirty and fifteen seconds PM"),
        ("time", None, "9am", "nine AM"),
        ("telephone", None, "+1 555 123 4567", "plus one, five five five, one two three, four five six seven"),
    ],
)
def test_say_as_readings(kind: str, form: str | None, text: str, words: str) -> None:
    assert read_as(kind, form, text) == words


@pytest.mark.parametrize(
    ("kind", "form", "text"),
    [("cardinal", None, "many"), ("date", "mdy", "13/45/2024"), ("date", "qq", "1/2"), ("time", None, "25:00")],
)
def test_say_as_content_that_is_not_what_it_says_is_read_as_text(kind: str, form: str | None, text: str) -> None:
    assert read_as(kind, form, text) is None
    assert said(f'<say-as interpret-as="{kind}"{f" format={form!r}" if form else ""}>{text}</say-as>') == (
        spoken_text(text, False, "en", True).said.text
    )


def test_say_as_numbers_follow_the_language() -> None:
    assert read_as("cardinal", None, "12", "de") == "zwölf"


def test_the_backend_gets_one_normalized_text_with_readings_and_phonemes_in_place() -> None:
    document = (
        '<speak>Call <say-as interpret-as="telephone">555 1234</say-as> about $5, '
        'or say <phoneme alphabet="ipa" ph="təˈmɑː toʊ">tomato</phoneme> twice.</speak>'
    )
    assert (
        said(document) == "Call five five five, one two three four about five dollars, or say [[ təˈmɑː toʊ ]] twice."
    )
    # A voice without phonemes says the element's text, normalized with the rest.
    assert said(document, phonemes=False) == (
        "Call five five five, one two three four about five dollars, or say tomato twice."
    )


def test_text_from_a_client_never_makes_a_phoneme_block() -> None:
    assert spoken_text("Say [[ ʃ ]] or [[[x]]] \ue000.", False, "en", True).said.text == "Say [ ʃ ] or [x]."
    assert said("<speak>Say [[ ʃ ]] now</speak>") == "Say [ ʃ ] now"


def test_the_segmenter_never_cuts_a_phoneme_block() -> None:
    text = "One two three four five [[ a b c d e f g h ]] and more words, then done."
    assert split_text(text)[0] == "One two three four five [[ a b c d e f g h ]]"


def test_every_character_said_names_the_words_written_through_aliases_readings_and_normalization() -> None:
    document = (
        '<speak><sub alias="engine x">Nginx</sub> costs $5, call <say-as interpret-as="digits">42</say-as> '
        'or say <phoneme alphabet="ipa" ph="təˈmɑːtoʊ">tomato</phoneme>.</speak>'
    )
    spoken = spoken_text(document, True, "en", True)
    assert spoken.written == "Nginx costs $5, call 42 or say tomato."
    said = spoken.said
    assert said.text == "engine x costs five dollars, call four two or say [[ təˈmɑːtoʊ ]]."
    origins = {}
    for word in re.finditer(r"\S+", said.text):
        start, end = said.origin(word.start(), word.end())
        origins[word[0]] = spoken.written[start:end]
    assert origins == {
        "engine": "Nginx",
        "x": "Nginx",
        "costs": "costs",
        "five": "$5",
        "dollars,": "$5,",
        "call": "call",
        "four": "42",
        "two": "42",
        "or": "or",
        "say": "say",
        "[[": "tomato",
        "təˈmɑːtoʊ": "tomato",
        "]].": "tomato.",
    }


def test_a_fragment_holds_as_many_rule_matches_as_its_text_has_words() -> None:
    lexicon = Lexicon(
        rules_from_json(
            [
                {"string_to_replace": "tomato", "type": "phoneme", "phoneme": "təˈmɑːtoʊ"},
                {"string_to_replace": "Nginx", "type": "alias", "alias": "engine x"},
            ]
        )
    )
    inlines = lexicon.apply([Text("tomato Nginx " * (MAX_ELEMENTS + 1))])
    said = spoken_text(fragment(inlines), True, "en", True).said.text
    assert said.count("[[ təˈmɑːtoʊ ]]") == said.count("engine x") == MAX_ELEMENTS + 1


def test_readings_beyond_the_places_for_them_are_said_as_written(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(spoken, "MAX_READINGS", 2)
    document = '<speak><sub alias="one">1st</sub> <sub alias="two">2nd</sub> <sub alias="three">3rd</sub></speak>'
    assert said(document) == "one two third"
