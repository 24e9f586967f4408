"""Running one point: its command line, built here from validated values and run as an argument list
(no shell) in a process group of its own, and what became of it."""
from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from inspector.sweep.grid import Point

DEFAULT_POINT_TIMEOUT = 1800.0
_STDERR_TAIL = 64 * 1024


# --- running points ----------------------------------------------------------------------

@dataclass
class Outcome:
    """What running one point's process gave: its exit code (negative: killed by that signal),
    its stderr, seconds, whether it ran past its limit, and the files it wrote (name -> bytes,
    when it ran elsewhere and the files came back)."""

    exit_code: int | None
    stderr: str
    seconds: float
    timed_out: bool = False
    error: str | None = None
    files: dict[str, bytes] = field(default_factory=dict)


def point_command(point: Point, out_dir: str | os.PathLike[str], html: bool = True) -> list[str]:
    """The full command of one point: this Python, the CLI, and outputs inside ``out_dir``.

    ``-c`` rather than ``-m`` so the process does not put its working folder first on ``sys.path``;
    it runs with the point's own folder as working folder anyway."""
    argv = [sys.executable]
    if sys.version_info >= (3, 11):
        argv.append("-P")
    argv += ["-c", "from inspector.cli.commands import main; main()", *point.argv,
             "--json", str(Path(out_dir) / "run.json")]
    if html:
        argv += ["--html", str(Path(out_dir) / "report.html")]
    return argv


_CHILDREN: set[subprocess.Popen] = set()
_CHILDREN_LOCK = threading.Lock()


def run_process(command: list[str], cwd: str | os.PathLike[str], timeout: float | None,
                env: dict[str, str] | None = None) -> Outcome:
    """Run one point in its own process group; past ``timeout`` the whole group is killed."""
    start = time.perf_counter()
    child_env = dict(os.environ if env is None else env)
    child_env.setdefault("PYTHONUNBUFFERED", "1")
    try:
        proc = subprocess.Popen(command, cwd=cwd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, env=child_env, start_new_session=True)
    except OSError as exc:
        return Outcome(None, "", 0.0, error=f"could not start: {exc.strerror or exc}")
    with _CHILDREN_LOCK:
        _CHILDREN.add(proc)
    timed_out = False
    try:
        try:
            _, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
            _kill_group(proc)
            _, err = proc.communicate()
    finally:
        with _CHILDREN_LOCK:
            _CHILDREN.discard(proc)
    text = err.decode("utf-8", "replace")[-_STDERR_TAIL:] if err else ""
    return Outcome(proc.returncode, text, time.perf_counter() - start, timed_out=timed_out)


def _kill_group(proc: subprocess.Popen) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)


def kill_all_points() -> None:
    """Stop every point still running (Ctrl-C on the sweep)."""
    with _CHILDREN_LOCK:
        running = list(_CHILDREN)
    for proc in running:
        _kill_group(proc)


def failure_reason(outcome: Outcome, timeout: float | None) -> str | None:
    """None for a clean exit; else one line that says why the point failed."""
    if outcome.error:
        return outcome.error
    if outcome.timed_out:
        return f"timed out after {timeout:g} s (killed)"
    code = outcome.exit_code
    if code == 0:
        return None
    last = next((line.strip() for line in reversed(outcome.stderr.splitlines()) if line.strip()), "")
    if code is not None and code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        why = f"killed by {name}" + (" (out of memory?)" if -code == signal.SIGKILL else "")
        return why + (f": {last}" if last else "")
    if last.startswith("error: "):
        last = last[len("error: "):]
    return f"exit {code}: {last}" if last else f"exit {code}"


# --- the sweep ------------------------------------------------------------------------

@dataclass
class SweepSettings:
    out: Path
    timeout: float | None = DEFAULT_POINT_TIMEOUT
    jobs: int | None = None
    executor: str = "local"
    address: str | None = None
    retry_failed: bool = False
    point_reports: bool = True
