"""lib.redact: API keys never appear in what SynTrack writes."""

from __future__ import annotations

import json
from urllib.parse import quote

import pytest

from conftest import SYNTHETIC_KEY, ZAI_KEY
from lib.redact import mask, redact


def test_a_synthetic_key_keeps_its_prefix_and_last_three_characters() -> None:
    assert mask(SYNTHETIC_KEY) == "syn_te…456"


def test_another_key_keeps_four_characters_and_the_last_three() -> None:
    assert mask(ZAI_KEY) == "zai-…def"


@pytest.mark.parametrize("key", ["", "a", "syn_1234", "abcdefghijk", "syn_abcdefg", "abcdefghijklmno"])
def test_a_short_key_shows_nothing_at_all(key: str) -> None:
    assert mask(key) == "***"


def test_a_sixteen_character_key_is_the_shortest_to_show_a_prefix() -> None:
    # Below that, four plus three characters would give away too much of it.
    assert mask("abcdefghijklmnop") == "abcd…nop"


@pytest.mark.parametrize("key", [SYNTHETIC_KEY, ZAI_KEY, "x" * 16, "syn_" + "k" * 40, "0123456789abcdef"])
def test_a_mask_never_holds_the_key_and_shows_at_most_seven_of_its_characters(key: str) -> None:
    masked = mask(key)

    assert key not in masked
    shown = masked.replace("…", "").removeprefix("syn_")
    assert len(shown) <= 7


def test_every_occurrence_is_replaced() -> None:
    text = f"{SYNTHETIC_KEY} and again {SYNTHETIC_KEY}"

    assert redact(text, [SYNTHETIC_KEY]) == "syn_te…456 and again syn_te…456"


def test_every_secret_is_replaced() -> None:
    text = f"synthetic={SYNTHETIC_KEY} zai={ZAI_KEY}"

    assert redact(text, [SYNTHETIC_KEY, ZAI_KEY]) == "synthetic=syn_te…456 zai=zai-…def"


def test_text_without_a_secret_is_unchanged() -> None:
    assert redact("connection refused", [SYNTHETIC_KEY, ZAI_KEY]) == "connection refused"


def test_empty_secrets_are_ignored() -> None:
    # An unset key is "", and "".replace would otherwise touch every position.
    assert redact("nothing to hide", ["", ""]) == "nothing to hide"
    assert redact("nothing to hide", []) == "nothing to hide"


def test_a_secret_containing_another_is_masked_whole() -> None:
    short = "abcdefghijkl"
    long = short + "MNOPQRSTUV"

    for order in ([short, long], [long, short]):
        result = redact(f"key={long}", order)
        assert "MNOPQRS" not in result
        assert result == f"key={mask(long)}"


@pytest.mark.parametrize(
    "form",
    [
        lambda key: repr(key),
        lambda key: json.dumps(key),
        lambda key: quote(key, safe=""),
    ],
    ids=["repr", "json", "url"],
)
def test_escaped_forms_of_a_secret_are_masked_too(form) -> None:
    key = 'tab\there"quote\\slash/0123456789'
    text = f"invalid header value {form(key)}"

    result = redact(text, [key])

    assert "0123456789" not in result
    assert mask(key) in result


def test_a_secret_with_a_line_break_in_a_quoted_error_is_masked() -> None:
    key = "abcd1234\nefgh5678ijkl"
    message = f"Invalid leading whitespace, reserved character(s), or return character(s) in header value: {key!r}"

    assert "efgh5678" not in redact(message, [key])
