"""Exceptions raised for bad user input.

Every error names the offending input and says what was expected, so the CLI can print it
as-is (exit code 2) and a notebook user sees the cause, not a deep stack trace.
"""
from __future__ import annotations


class ObceInputError(ValueError):
    """Bad input: an unknown name, a malformed file, a value out of range."""


class MissingResourceError(ObceInputError, FileNotFoundError):
    """A model or data file that is neither local nor reachable on the Hugging Face hub."""


def check_choice(what: str, value, choices) -> None:
    """Raise :class:`ObceInputError` naming ``what`` (e.g. ``"method combined score"``) unless ``value``
    is one of ``choices``."""
    if value not in choices:
        raise ObceInputError(f"{what}={value!r}: expected one of {tuple(choices)}")
