"""Errors a user can cause: the CLI prints the message as one line and exits with status 2."""

from __future__ import annotations

import difflib


class UsageError(Exception):
    """Bad input from the user; the message says what to do instead."""


def unknown(kind: str, name: str, choices) -> UsageError:
    """An 'unknown NAME' error with a did-you-mean suggestion and the list to choose from."""
    choices = sorted(choices)
    close = difflib.get_close_matches(name, choices, n=1)
    hint = f"did you mean '{close[0]}'?" if close else f"choose one of: {', '.join(choices) or '(none registered)'}"
    return UsageError(f"unknown {kind} '{name}': {hint}")
