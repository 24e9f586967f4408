"""Messages the workers post to the app (thread-safe ``post_message``)."""
from __future__ import annotations

from textual.message import Message

from inspector.results.records import RunResult


class RunReady(Message):
    """A run (inspected, profiled, or opened from a file) is ready to show."""

    def __init__(self, run: RunResult, note: str = "") -> None:
        super().__init__()
        self.run = run
        self.note = note


class RunFailed(Message):
    def __init__(self, error: str) -> None:
        super().__init__()
        self.error = error


class Progress(Message):
    """Where a running job is. Floods coalesce: a newer one replaces a queued older one."""

    def __init__(self, stage: str, fraction: float, detail: str) -> None:
        super().__init__()
        self.stage, self.fraction, self.detail = stage, fraction, detail

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, Progress)
