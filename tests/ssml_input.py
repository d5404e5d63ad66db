"""Hypothesis strategies for SSML documents: pieces of every element, attribute and hazard, glued at random."""

from __future__ import annotations

from hypothesis import strategies as st

SSML_PIECES = st.sampled_from(
    [
        "<speak>", "</speak>", "<break/>", '<break time="', "ms", "s\"/>", '<prosody rate="', "50%", "x-fast", '">',
        "</prosody>", '<say-as interpret-as="', "characters", "date", "telephone", '" format="dmy">', "</say-as>",
        '<phoneme alphabet="ipa" ph="', "təˈmɑː", "]]", '">', "</phoneme>", '<voice name="', "nobody", "</voice>",
        '<sub alias="', "<p>", "</p>", "<s>", "</s>", "<lang xml:lang=\"", "fr", "&amp;", "&lt;", "&bogus;",
        "<!DOCTYPE x>", "<![CDATA[", "]]>", "<!-- c -->", "<?pi x?>", "<unknown>", "</unknown>", "Hello",
        " 12/25/2024 ", "$3.50", " ", "[[", "\ue000", "\x00", "\ud800", "é", "ß",
    ]
)  # fmt: skip
SSML_DOCUMENTS = st.lists(SSML_PIECES | st.text(max_size=8), max_size=14).map("".join)
