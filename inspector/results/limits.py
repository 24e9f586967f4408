"""What a run may hold: one set of figures for every border that checks a value.

The CLI's options and the Python API's (``inspector.cli.commands``, ``inspector.python_api``), the
values plugins hand back (``inspector.plugin.validation``), the default image size a pipeline's
configs imply (``inspector.inspection``), the JSON Schema (``inspector.results.schema``) and the
reader of saved runs (``reports/json_report.py``) all use these, so whatever the tool writes,
``report`` reads back.
"""
from __future__ import annotations

import math
from typing import Any

#: Integers are counts (parameters, FLOPs, bytes) and seeds: 64 bits, signed or unsigned (a torch
#: generator takes seeds from -2^63 to 2^64-1).
MIN_INT, MAX_INT = -(2**63), 2**64 - 1
#: A float beyond 1e18 (milliseconds: 30 million years) is an edit, not a measurement; beyond it,
#: formatting would print 300-digit numbers.
MAX_FLOAT = 1e18

#: Input options, far beyond any real use, so an absurd one is refused before anything allocates.
MAX_SIZE, MAX_BATCH, MAX_STEPS = 16384, 1024, 10_000
#: Real guidance scales are 0 to about 30; past this the value is a typo (``1e19``).
MAX_GUIDANCE = 1000.0
#: ``--fits SIZE``: no device has more than an exbibyte of memory.
MAX_MEMORY_BYTES = 2**60


def out_of_range(value: Any) -> str | None:
    """Why a number cannot be part of a run, or None (NaN and infinities are written as ``null``)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int) and not MIN_INT <= value <= MAX_INT:
        return f"{str(value)[:24]}{'...' if len(str(value)) > 24 else ''} does not fit in 64 bits"
    if isinstance(value, float) and math.isfinite(value) and not -MAX_FLOAT <= value <= MAX_FLOAT:
        return f"{value:g} is beyond {MAX_FLOAT:g} in magnitude"
    return None


#: ``--frames``: video pipelines make tens to a few hundred (Wan 81, HunyuanVideo 129, LTX 257).
MAX_FRAMES = 10_000
#: ``--warmup``, ``--repeats``, ``--e2e-repeats``: timed calls are seconds each.
MAX_REPEATS = 10_000
#: ``--peak-tflops``: the fastest accelerators are in the thousands; the run holds it as FLOP/s.
MAX_PEAK_TFLOPS = 1e6
#: ``--max-time`` (seconds) and ``--max-spread`` (a fraction).
MAX_SECONDS, MAX_SPREAD = 1e6, 1e3
