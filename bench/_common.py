"""Helpers shared by the benchmarks: peak RSS and running a phase in a fresh process."""
from __future__ import annotations

import json
import resource
import subprocess
import sys


def peak_rss_bytes() -> int:
    """This process's peak resident set size (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def run_phase(script: str, phase: str, *args: str) -> dict:
    """Run ``script --phase PHASE`` in a fresh interpreter so each phase's peak RSS is its own."""
    proc = subprocess.run([sys.executable, script, "--phase", phase, *args], capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"phase {phase} failed:\n{proc.stderr}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def gib(n: float) -> str:
    return f"{n / 2**30:.2f} GiB"
