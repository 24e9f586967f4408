"""How long a user waits for an input error: whole process, from start to the one-line message.

Every case runs ``ldm-inspector ...`` (the installed console script) in a fresh process, ``--runs``
times, and reports the median wall time. Two baselines run the same way in the same session:
``python -c pass`` (the interpreter alone) and ``ldm-inspector --version`` (the interpreter plus
the CLI's own imports). The target is every input error under 0.5 s.

Usage: ``python bench/input_errors.py [--runs N]``.
"""
from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGET_S = 0.5

CASES = [
    ("unknown preset (did you mean?)", ["inspect", "sd-21"]),
    ("missing folder", ["inspect", "./missing/folder"]),
    ("folder without model_index.json", ["inspect", "{empty}"]),
    ("repo id not in the cache", ["inspect", "acme/not-cached"]),
    ("size not a multiple of 8", ["inspect", "sd21", "--width", "100"]),
    ("size not a multiple of 16 (SD3)", ["inspect", "sd3", "--height", "1000"]),
    ("bad option value (did you mean?)", ["inspect", "--dtype", "float61"]),
    ("pickle checkpoint without --allow-pickle", ["inspect", "{ckpt}", "--arch", "sd15"]),
    ("single file without --arch", ["inspect", "{safetensors}"]),
    ("output folder missing", ["profile", "--json", "/no/such/dir/run.json"]),
]


def wall(command: list[str], expect: int) -> float:
    started = time.perf_counter()
    proc = subprocess.run(command, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    if proc.returncode != expect:
        raise SystemExit(f"{' '.join(command)}: exit {proc.returncode}, expected {expect}: {proc.stderr.strip()}")
    return elapsed


def median_wall(command: list[str], runs: int, expect: int) -> float:
    wall(command, expect)  # one discarded run: the page cache, not the tool
    return statistics.median(wall(command, expect) for _ in range(runs))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    exe = shutil.which("ldm-inspector")
    if exe is None:
        raise SystemExit("ldm-inspector is not installed (pip install -e .)")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "empty").mkdir()
        (root / "model.ckpt").write_bytes(b"not a pickle")
        (root / "model.safetensors").write_bytes(b"\0" * 16)
        fill = {"{empty}": str(root / "empty"), "{ckpt}": str(root / "model.ckpt"),
                "{safetensors}": str(root / "model.safetensors")}
        python = median_wall([sys.executable, "-c", "pass"], args.runs, 0)
        version = median_wall([exe, "--version"], args.runs, 0)
        print(f"baseline python -c pass:         {python * 1000:7.0f} ms")
        print(f"baseline ldm-inspector --version: {version * 1000:7.0f} ms")
        print(f"{'input error':<42} {'median':>9} {'x python':>9} {'x --version':>11}")
        worst = 0.0
        for label, argv in CASES:
            command = [exe, *[fill.get(a, a) for a in argv]]
            seconds = median_wall(command, args.runs, 2)
            worst = max(worst, seconds)
            print(f"{label:<42} {seconds * 1000:6.0f} ms {seconds / python:8.1f}x {seconds / version:10.2f}x")
    verdict = "met" if worst < TARGET_S else "NOT met"
    print(f"slowest input error {worst * 1000:.0f} ms: target < {TARGET_S * 1000:.0f} ms {verdict} "
          f"(median of {args.runs} runs each)")


if __name__ == "__main__":
    main()
