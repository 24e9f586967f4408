"""Ctrl-C and SIGTERM at many moments of a real ``profile`` process: loading, each profiling phase,
writing. Every run ends in 130 (SIGINT) or 143 (SIGTERM), or 0 when it finished first; never in an
abort or an internal error; the JSON is the old one or a valid new one; no temporary file is left.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from inspector.reports import json_report

# Seconds after the process reached our package (before that, Python itself is starting and a
# signal gets its default treatment). The processes run together, so on a loaded machine the same
# delays land in different phases: importing the libraries, loading, per-component profiling, the
# pipeline call, writing.
# Two waves of four processes each, so that the later moments reach profiling and writing.
WAVES = [
    [(signal.SIGINT, 0.0), (signal.SIGINT, 1.5), (signal.SIGTERM, 0.5), (signal.SIGTERM, 4.0)],
    [(signal.SIGINT, 10.0), (signal.SIGINT, 20.0), (signal.SIGINT, 35.0), (signal.SIGTERM, 27.0)],
]
MOMENTS = [moment for wave in WAVES for moment in wave]

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/PID/status")


def wait_until_ours(proc: subprocess.Popen, timeout: float = 120.0) -> None:
    """Until the package's early handlers are installed: SIGTERM is caught (Python alone does not)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            status = Path(f"/proc/{proc.pid}/status").read_text()
        except OSError:
            return
        caught = int(next(line.split()[1] for line in status.splitlines() if line.startswith("SigCgt:")), 16)
        if caught & (1 << (signal.SIGTERM - 1)):
            return
        time.sleep(0.01)


def run_and_signal(folder: Path, sig: int, delay: float) -> tuple[int, str]:
    folder.mkdir()
    (folder / "run.json").write_text("previous")
    env = {**os.environ, "LDM_INSPECTOR_DISABLE_PLUGIN_AUTOLOAD": "1", "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "inspector", "profile", "tiny-sd", "--steps", "2", "--warmup", "0", "--repeats", "1",
         "--e2e-repeats", "1", "--json", "run.json", "--html", "run.html", "--csv", "csv"],
        cwd=folder, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    wait_until_ours(proc)
    time.sleep(delay)
    if proc.poll() is None:
        proc.send_signal(sig)
    _, err = proc.communicate(timeout=300)
    return proc.returncode, err


def test_signals_at_many_moments_end_cleanly(tmp_path):
    outcomes: dict[tuple[int, float], tuple[int, str]] = {}

    def one(sig: int, delay: float) -> None:
        outcomes[(sig, delay)] = run_and_signal(tmp_path / f"{signal.Signals(sig).name}-{delay}", sig, delay)

    for wave in WAVES:
        threads = [threading.Thread(target=one, args=moment) for moment in wave]
        for t in threads:
            t.start()
        for t in threads:
            t.join(400)
    assert len(outcomes) == len(MOMENTS)
    interrupted = 0
    for (sig, delay), (code, err) in outcomes.items():
        folder = tmp_path / f"{signal.Signals(sig).name}-{delay}"
        expected = 128 + sig
        assert code in (0, expected), (sig, delay, code, err[:2000], err[-500:])  # never -6 (abort), 1, a traceback
        assert "Traceback" not in err and "terminate called" not in err, err[-500:]
        left = [p.name for p in folder.rglob("*") if p.name.endswith(".tmp") or ".ldm-inspector-probe." in p.name]
        assert left == [], (sig, delay, left)
        text = (folder / "run.json").read_text()
        if code == 0:
            assert json.loads(text)["interrupted"] is False
            continue
        interrupted += 1
        assert err.strip().splitlines()[-1].startswith("interrupted"), err[-300:]
        # the old file untouched, or a complete new one that says it was interrupted
        assert text == "previous" or json_report.load(folder / "run.json").interrupted is True, (sig, delay)
    def kept(sig: int, delay: float) -> str:
        text = (tmp_path / f"{signal.Signals(sig).name}-{delay}" / "run.json").read_text()
        return "old json" if text == "previous" else "new json"

    print("\nsignal outcomes: " + ", ".join(f"{signal.Signals(sig).name}@{delay:g}s->{code} ({kept(sig, delay)})"
                                          for (sig, delay), (code, _) in sorted(outcomes.items())), file=sys.stderr)
    assert interrupted >= 3  # the moments fell inside runs, not only after them


@pytest.fixture
def retry_timers(monkeypatch) -> list[float]:
    """The signal guard with fresh state and its retry timer recorded instead of armed."""
    from inspector.runtime import signals as guard

    timers: list[float] = []
    monkeypatch.setattr(guard.signal, "setitimer", lambda which, seconds: timers.append(seconds))
    monkeypatch.setattr(guard, "_received", [])
    monkeypatch.setattr(guard, "_pending", [])
    return timers


def test_a_signal_inside_a_callback_from_cpp_waits_until_python_is_back(monkeypatch, retry_timers):
    """Raising inside torch's dispatch mode (called from C++) can abort the process; the
    interrupt is held and raised a moment later, from plain Python."""
    from inspector.runtime import signals as guard

    timers = retry_timers

    def __torch_dispatch__():  # noqa: N807 - named like the callback C++ makes
        guard._on_sigint(signal.SIGINT, sys._getframe())

    __torch_dispatch__()  # held, not raised
    assert timers == [guard.RETRY_SECONDS] and guard._pending == [signal.SIGINT] and not guard.interrupted()
    with pytest.raises(KeyboardInterrupt):
        guard._on_retry(signal.SIGALRM, sys._getframe())
    assert guard.interrupted() and guard._pending == []
    with pytest.raises(guard.Terminated):  # SIGTERM outside any callback: at once
        guard._on_sigterm(signal.SIGTERM, sys._getframe())
    assert guard.interrupt_exit_code() == 143


def test_a_signal_inside_a_finalizer_is_held_not_swallowed(monkeypatch, retry_timers):
    """Python drops an exception raised in ``__del__`` and prints "Exception ignored" with a
    traceback: a Ctrl-C landing in a library's finalizer would be noisy and lost. It is held
    and raised once the finalizer has returned."""
    import gc

    from inspector.runtime import signals as guard

    timers = retry_timers
    unraisable: list[object] = []
    monkeypatch.setattr(sys, "unraisablehook", unraisable.append)

    class Finalized:
        def __del__(self):
            guard._on_sigint(signal.SIGINT, sys._getframe())

    Finalized()  # dropped at once: __del__ runs here
    gc.collect()
    assert unraisable == [] and timers == [guard.RETRY_SECONDS] and guard._pending == [signal.SIGINT]
    with pytest.raises(KeyboardInterrupt):
        guard._on_retry(signal.SIGALRM, sys._getframe())
    assert guard.interrupted()


def test_an_interrupt_python_cannot_propagate_is_delivered_again(monkeypatch, retry_timers):
    """A weakref callback is not a ``__del__``, yet Python drops what it raises too; the
    interrupt comes back through the unraisable hook and is raised again a moment later."""
    import gc
    import weakref

    from inspector.runtime import signals as guard

    timers = retry_timers
    printed: list[object] = []
    monkeypatch.setattr(guard, "_previous_unraisablehook", printed.append)
    monkeypatch.setattr(sys, "unraisablehook", guard._on_unraisable)

    class Target:
        pass

    target = Target()
    ref = weakref.ref(target, lambda _ref: guard._on_sigint(signal.SIGINT, sys._getframe()))
    del target  # the callback raises KeyboardInterrupt where nothing can catch it
    gc.collect()
    assert ref() is None
    assert printed == [] and timers == [guard.RETRY_SECONDS] and guard._pending == [signal.SIGINT]
    assert not guard.interrupted()
    with pytest.raises(KeyboardInterrupt):
        guard._on_retry(signal.SIGALRM, sys._getframe())
    assert guard.interrupted()
    # anything else still reaches the previous hook
    try:
        raise ValueError("x")
    except ValueError as exc:
        guard._on_unraisable(type("U", (), {"exc_value": exc})())
    assert len(printed) == 1
