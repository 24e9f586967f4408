"""Errors: the ones the user can act on, and how any failure is described and classified.

Everything raised as :class:`InspectorError` is shown as one line on stderr with
exit code 2; anything else is a bug and is reported as an internal error. A leaf module: it imports nothing
else of ours, so every layer can use it.
"""
from __future__ import annotations

import difflib
import os
import sys
import traceback
from typing import Iterable


class InspectorError(Exception):
    """A problem with the user's input or environment, explained in one line."""

    exit_code = 2

    def __str__(self) -> str:  # keep it one line whatever the message held
        return " ".join(super().__str__().split())


class SourceError(InspectorError):
    """The model source cannot be resolved or loaded."""


class OptionError(InspectorError):
    """An option has a value the pipeline cannot take."""


class HookTimeout(Exception):
    """A hook implementation did not return within the time limit."""


#: what the CPU allocator says in the ``RuntimeError`` it raises (it raises no ``MemoryError``)
CPU_ALLOCATION_FAILURES = ("DefaultCPUAllocator: can't allocate memory", "DefaultCPUAllocator: not enough memory",
                           "can't allocate memory")


def is_out_of_memory(exc: BaseException) -> bool:
    """Whether ``exc`` says a device ran out of memory: Python's ``MemoryError``, torch's
    ``OutOfMemoryError`` (CUDA and other accelerators), or the CPU allocator's ``RuntimeError``.
    The one test for every place that treats running out of memory apart from other failures."""
    if isinstance(exc, MemoryError):
        return True
    torch = sys.modules.get("torch")  # no torch imported: no torch error either
    if torch is not None and isinstance(exc, torch.OutOfMemoryError):
        return True
    return isinstance(exc, RuntimeError) and any(marker in str(exc) for marker in CPU_ALLOCATION_FAILURES)


def describe_exception(exc: BaseException) -> str:
    """``Type: message (file.py:line)`` on one line: how every failure is recorded in a run."""
    text = " ".join(str(exc).split())
    frame = traceback.extract_tb(exc.__traceback__)[-1] if exc.__traceback__ else None
    where = f" ({os.path.basename(frame.filename)}:{frame.lineno})" if frame else ""
    return f"{type(exc).__name__}: {text}{where}" if text else f"{type(exc).__name__}{where}"


def did_you_mean(word: str, choices: Iterable[str], n: int = 2) -> str:
    """``" (did you mean sd21?)"`` for the closest of ``choices``, or ``""`` when none is close."""
    close = difflib.get_close_matches(word, sorted(set(choices)), n=n, cutoff=0.6)
    if not close:
        lowered = {c.lower(): c for c in choices}
        close = [lowered[word.lower()]] if word.lower() in lowered else []
    return f" (did you mean {' or '.join(close)}?)" if close else ""
