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


DISTRIBUTION = "harness-lm"  # what pip knows this project by (PyPI's "harness" is an unrelated project)


def install_command(*extras: str) -> str:
    """The pip command that adds ``extras`` of this distribution, for messages and help texts alike."""
    return " or ".join(f"pip install '{DISTRIBUTION}[{extra}]'" for extra in extras)


def missing_extra(feature: str, package: str, *extras: str, note: str = "") -> UsageError:
    """The error for an optional dependency that is not installed, naming the extra(s) of this distribution that
    bring it; every such message is built here so none names the wrong distribution."""
    hint = f" ({note})" if note else ""
    return UsageError(f"{feature} needs {package}, which is not installed: {install_command(*extras)}{hint}")
