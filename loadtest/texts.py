"""What the load says: conversational turns of varied length, and one paragraph for the REST routes."""

from __future__ import annotations

import itertools
import random

UTTERANCES: tuple[str, ...] = (
    "Sure, I can help with that.",
    "Hello there, how are you doing today?",
    "Your order has shipped and should arrive on Thursday afternoon.",
    "I found three restaurants nearby. The closest one is a small Italian place about five minutes away.",
    "Okay.",
    "Let me check the calendar. You are free on Monday morning, but Tuesday is fully booked.",
    "The weather tomorrow will be sunny, with a light breeze from the west and a high of twenty degrees.",
    "Got it, I will remind you at six.",
    "That is a great question. The short answer is yes, but there are a few details worth knowing first.",
    "Sorry, I did not catch that. Could you say it again?",
    "Your balance is one hundred and twenty dollars.",
    "Thanks for calling. Is there anything else I can do for you today?",
)

REST_TEXT = (
    "The quick brown fox jumps over the lazy dog. Then it runs into the forest, "
    "where it meets an old friend who has been waiting there since early morning."
)


class UniqueTexts:
    """Makes each text of a run unique with a closing sentence, so no audio cache can answer it and
    the load measures synthesis; the opening words, which decide time to first audio, stay as they
    are. Numbers count up from a random five-digit start, so runs against one server differ too."""

    def __init__(self) -> None:
        self._serials = itertools.count(random.randrange(10_000, 90_000))

    def __call__(self, text: str) -> str:
        return f"{text} That was note {next(self._serials)}."
