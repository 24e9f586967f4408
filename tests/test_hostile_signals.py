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

# Seconds after start. The processes start together, so on a loaded machine the same delays land
# in different phases: import, loading, per-component profiling, the pipeline call, writing.
MOMENTS = [(signal.SIGINT, d) for d in (1.0, 3.0, 6.0, 10.0, 15.0, 21.0, 28.0)] + \
          [(signal.SIGTERM, d) for d in (2.0, 8.0, 18.0)]


def run_and_signal(folder: Path, sig: int, delay: float) -> tuple[int, str]:
    folder.mkdir()
    (folder / "run.json").write_text("previous")
    env = {**os.environ, "LDM_INSPECTOR_DISABLE_PLUGIN_AUTOLOAD": "1", "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "inspector", "profile", "tiny-sd", "--steps", "2", "--warmup", "0", "--repeats", "1",
         "--e2e-repeats", "1", "--json", "run.json", "--html", "run.html", "--csv", "csv"],
        cwd=folder, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    time.sleep(delay)
    if proc.poll() is None:
        proc.send_signal(sig)
    _, err = proc.communicate(timeout=300)
    return proc.returncode, err


def test_signals_at_many_moments_end_cleanly(tmp_path):
    outcomes: dict[tuple[int, float], tuple[int, str]] = {}

    def one(sig: int, delay: float) -> None:
        outcomes[(sig, delay)] = run_and_signal(tmp_path / f"{signal.Signals(sig).name}-{delay}", sig, delay)

    threads = [threading.Thread(target=one, args=moment) for moment in MOMENTS]
    for t in threads:
        t.start()
    for t in threads:
        t.join(400)
    assert len(outcomes) == len(MOMENTS)
    interrupted = 0
    for (sig, delay), (code, err) in outcomes.items():
        folder = tmp_path / f"{signal.Signals(sig).name}-{delay}"
        expected = 128 + sig
        assert code in (0, expected), (sig, delay, code, err[-500:])  # never -6 (abort), 1 or a traceback
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
    print("\nsignal outcomes: " + ", ".join(f"{signal.Signals(sig).name}@{delay:g}s->{code}"
                                          for (sig, delay), (code, _) in sorted(outcomes.items())), file=sys.stderr)
    assert interrupted >= 3  # the moments fell inside runs, not only after them
