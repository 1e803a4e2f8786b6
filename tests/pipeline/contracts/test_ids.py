"""The one stream-id rule, as the decoder and the state store both apply it."""

from __future__ import annotations

import re

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from pipeline.contracts.ids import (
    STREAM_ID_PATTERN,
    STREAM_MAX_CHARS,
    stream_id_problem,
    unsafe_char,
)


@pytest.mark.parametrize(
    "stream", ["acct-42", "é-流", "a b", "x" * STREAM_MAX_CHARS, "nbsp\u00a0ok", "zw\u200bj"]
)
def test_valid_ids(stream: str) -> None:
    assert stream_id_problem(stream) is None


@pytest.mark.parametrize(
    ("stream", "why"),
    [
        ("", "non-empty"),
        ("x" * (STREAM_MAX_CHARS + 1), "longer than 200"),
        ("a\nb", "control character '\\n'"),
        ("a\x7f", "control character"),
        ("a\x85", "control character"),
        ("a\ud800", "unpaired surrogate"),
    ],
)
def test_invalid_ids_say_why(stream: str, why: str) -> None:
    problem = stream_id_problem(stream)
    assert problem is not None and why in problem and "\n" not in problem


@given(st.text(st.characters(codec=None, exclude_categories=())))
def test_unsafe_means_a_control_character_or_a_lone_surrogate(text: str) -> None:
    bad = any(c <= "\x1f" or "\x7f" <= c <= "\x9f" or "\ud800" <= c <= "\udfff" for c in text)
    assert (unsafe_char(text) is not None) == bad


@example("acct-42\n")
@given(st.text(st.characters(codec="utf-8"), min_size=1, max_size=STREAM_MAX_CHARS))
def test_the_api_pattern_says_what_the_rule_says(stream: str) -> None:
    """URL paths carry no lone surrogate: on the rest the pattern and the rule agree."""
    matches = re.fullmatch(STREAM_ID_PATTERN, stream) is not None  # fullmatch: "$" before "\n"
    assert matches == (stream_id_problem(stream) is None)
