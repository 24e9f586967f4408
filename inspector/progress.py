"""Progress where the caller is: a widget or a line in a notebook, a line on a terminal.

:func:`progress_display` turns the ``progress=`` argument of ``inspector.inspect``/``profile`` into
the ``report(stage, fraction, detail)`` callable the runs call. In a Jupyter kernel it shows an
``ipywidgets`` bar when ipywidgets is installed, else one line of text updated in place through a
display id (never carriage returns in the cell's output); on a terminal, one line on stderr; into a
pipe or a file, nothing. A clock thread keeps the elapsed time moving between reports, so a long
operator does not look like a hang. ``progress=False`` shows nothing; a callable is called as it is.
"""
from __future__ import annotations

import contextlib
import sys
import threading
import time
from typing import Any, Callable, Iterator

Report = Callable[[str, float, str], None]

#: seconds between redraws of the same stage (a new stage is drawn at once)
REDRAW = 0.25
#: seconds between the clock's redraws when no report came
TICK = 1.0


def in_notebook() -> bool:
    """Whether this process is a Jupyter kernel (an IPython shell with a kernel attached)."""
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None else None
    return shell is not None and getattr(shell, "kernel", None) is not None


def elapsed_text(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 60}:{seconds % 60:02d}" if seconds < 3600 else \
        f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


class Display:
    """What is drawn: the command, the stage and its detail, the stage's fraction, the clock."""

    def __init__(self, command: str) -> None:
        self.command = command
        self.started = time.monotonic()
        self.stage, self.detail, self.fraction = "starting", "", 0.0
        self._drawn_at = 0.0
        self._lock = threading.Lock()

    def line(self) -> str:
        done = max(0.0, min(1.0, self.fraction))
        detail = f" · {self.detail}" if self.detail else ""
        return f"{self.command}: {self.stage}{detail} [{done:4.0%}] {elapsed_text(time.monotonic() - self.started)}"

    def report(self, stage: str, fraction: float, detail: str) -> None:
        with self._lock:
            new_stage = stage != self.stage
            self.stage, self.fraction, self.detail = str(stage), float(fraction), str(detail)
            now = time.monotonic()
            if new_stage or now - self._drawn_at >= REDRAW:
                self._drawn_at = now
                self.draw()

    def tick(self) -> None:
        with self._lock:
            self._drawn_at = time.monotonic()
            self.draw()

    def draw(self) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    def close(self, ok: bool) -> None:
        with self._lock:
            self.stage, self.detail = ("done" if ok else "stopped"), ""
            self.fraction = 1.0 if ok else self.fraction
            self.draw()


class TextDisplay(Display):
    """One line of text in a notebook cell, replaced in place through its display id."""

    def __init__(self, command: str) -> None:
        super().__init__(command)
        from IPython.display import display

        self.handle = display({"text/plain": self.line()}, raw=True, display_id=True)

    def draw(self) -> None:
        if self.handle is not None:
            self.handle.update({"text/plain": self.line()}, raw=True)


class WidgetDisplay(Display):
    """An ipywidgets bar with the stage beside it."""

    def __init__(self, command: str) -> None:
        super().__init__(command)
        import ipywidgets  # type: ignore[import-untyped]
        from IPython.display import display

        self.bar = ipywidgets.FloatProgress(value=0.0, min=0.0, max=1.0, description=command)
        self.label = ipywidgets.Label(value=self.line())
        display(ipywidgets.HBox([self.bar, self.label]))

    def draw(self) -> None:
        self.bar.value = max(0.0, min(1.0, self.fraction))
        self.label.value = self.line()

    def close(self, ok: bool) -> None:
        super().close(ok)
        self.bar.bar_style = "success" if ok else "warning"


class TerminalDisplay(Display):
    """One line on a terminal's stderr, redrawn in place and cleared at the end."""

    def __init__(self, command: str, stream: Any) -> None:
        super().__init__(command)
        self.stream = stream
        self.width = 0

    def draw(self) -> None:
        text = self.line()[:119]
        self.stream.write("\r" + text.ljust(self.width))
        self.stream.flush()
        self.width = len(text)

    def close(self, ok: bool) -> None:
        with self._lock:
            self.stream.write("\r" + " " * self.width + "\r")
            self.stream.flush()


def make_display(command: str) -> Display | None:
    """The display for where this process runs, or None (output into a pipe or a file)."""
    if in_notebook():
        try:
            import ipywidgets  # noqa: F401 - only whether it is there
        except ImportError:
            return TextDisplay(command)
        return WidgetDisplay(command)
    stream = sys.stderr
    if stream is not None and getattr(stream, "isatty", lambda: False)():
        return TerminalDisplay(command, stream)
    return None


@contextlib.contextmanager
def progress_display(progress: Any, command: str) -> Iterator[Report | None]:
    """``report`` for the run: ``progress`` ``True`` (a display where the caller is), ``False`` or
    ``None`` (none), or a callable (itself). A display is closed however the run ends."""
    if progress is None or progress is False:
        yield None
        return
    if callable(progress):
        yield progress
        return
    if progress is not True:
        raise TypeError(f"progress={progress!r}: expected True, False or a callable (stage, fraction, detail)")
    display = make_display(command)
    if display is None:
        yield None
        return
    stop = threading.Event()

    def clock() -> None:
        while not stop.wait(TICK):
            display.tick()

    thread = threading.Thread(target=clock, name="ldm-inspector-progress", daemon=True)
    thread.start()
    ok = False
    try:
        yield display.report
        ok = True
    finally:
        stop.set()
        thread.join()
        display.close(ok)
