"""The one rule for names that travel: stream ids (and feature names) people can read and store.

A stream id is a non-empty string of at most `STREAM_MAX_CHARS` characters with no control
character (C0 or C1) and no lone surrogate. Control characters would break the one-line
logs, headers and dashboard rows the id is printed in; a lone surrogate (JSON ``"\\ud800"``
decodes to one) cannot be written back as UTF-8, so the id could not reach Redis, the
alerts topic or a dead-letter header. The decoder applies the rule to incoming events,
the state store to every key it builds, and the API to the ids it is asked about.
"""

from __future__ import annotations

import unicodedata

STREAM_MAX_CHARS = 200
STREAM_ID_PATTERN = r"^[^\x00-\x1f\x7f-\x9f]+$"
"""The rule as a JSON Schema pattern, for API docs (a lone surrogate cannot be in a URL)."""


def unsafe_char(text: str) -> str | None:
    """What makes ``text`` unprintable in a log line (a control character or a lone
    surrogate), or None when it has neither.

    One ``isprintable()`` call decides the common case; only a string it refuses is walked
    (it also refuses spaces other than " " and format characters, which are allowed).
    """
    if text.isprintable():
        return None
    for char in text:
        category = unicodedata.category(char)
        if category == "Cc":
            return f"control character {char!r}"
        if category == "Cs":
            return "an unpaired surrogate"
    return None


def stream_id_problem(stream: str) -> str | None:
    """Why ``stream`` is not a valid stream id (a phrase to follow its name), or None."""
    if not stream:
        return "must be a non-empty string"
    if len(stream) > STREAM_MAX_CHARS:
        return f"is {len(stream)} characters, longer than {STREAM_MAX_CHARS}"
    bad = unsafe_char(stream)
    return None if bad is None else f"contains {bad}"
