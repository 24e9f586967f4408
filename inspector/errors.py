"""Errors the user can act on.

Everything raised as :class:`InspectorError` is shown as one line on stderr with
exit code 2; anything else is a bug and is reported as an internal error.
"""
from __future__ import annotations


class InspectorError(Exception):
    """A problem with the user's input or environment, explained in one line."""

    exit_code = 2

    def __str__(self) -> str:  # keep it one line whatever the message held
        return " ".join(super().__str__().split())


class SourceError(InspectorError):
    """The model source cannot be resolved or loaded."""


class OptionError(InspectorError):
    """An option has a value the pipeline cannot take."""
