"""One number format for every front end (terminal, TUI, HTML, compare).

- counts (parameters, tokens, calls): thousands separators, ``1,179,648``
- FLOPs: SI prefixes with the unit, ``219.20 GFLOP``; rates ``1.23 TFLOP/s``
- bytes: binary units, ``1.5 MiB``
- times: ``µs``, ``ms`` or ``s`` by size
- a figure flagged unstable carries :data:`UNSTABLE_MARK`, explained by :data:`UNSTABLE_LEGEND`
"""
from __future__ import annotations

from typing import Any

#: appended to a figure whose relative spread stayed above the threshold (ASCII: survives pipes)
UNSTABLE_MARK = "!"
UNSTABLE_LEGEND = "! unstable: spread (IQR / median) above the threshold, or a busy machine: not a fact"

_SI = (("P", 1e15), ("T", 1e12), ("G", 1e9), ("M", 1e6), ("k", 1e3))


def _missing(n: Any) -> bool:
    return n is None or (isinstance(n, float) and n != n)


def human_count(n: Any) -> str:
    """An exact count: ``1179648`` -> ``1,179,648``."""
    if _missing(n):
        return "-"
    if isinstance(n, float) and not n.is_integer():
        return f"{n:,.2f}"
    return f"{int(n):,}"


def human_si(n: Any, unit: str) -> str:
    """``219202846720, 'FLOP'`` -> ``219.20 GFLOP``."""
    if _missing(n):
        return "-"
    for prefix, size in _SI:
        if abs(n) >= size:
            return f"{n / size:.2f} {prefix}{unit}"
    return f"{n:.0f} {unit}" if isinstance(n, int) or float(n).is_integer() else f"{n:.2f} {unit}"


def human_flops(n: Any) -> str:
    return human_si(n, "FLOP")


def human_rate(n: Any) -> str:
    return human_si(n, "FLOP/s")


def human_bytes(n: Any) -> str:
    if _missing(n):
        return "-"
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(value) < 1024 or unit == "TiB":
            return f"{int(value)} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return str(n)


def human_ms(ms: Any) -> str:
    if _missing(ms):
        return "-"
    return f"{ms / 1000:.2f} s" if ms >= 1000 else f"{ms:.2f} ms" if ms >= 1 else f"{ms * 1000:.0f} µs"


def human_pct(fraction: Any) -> str:
    return "-" if _missing(fraction) else f"{100 * fraction:.1f}%"


def human_spread(rel: Any) -> str:
    """A relative spread: ``0.034`` -> ``±3.4%``."""
    return "" if _missing(rel) else f"±{100 * rel:.1f}%"


def human_ratio(value: Any, interval: Any = None) -> str:
    """``1.02, [0.97, 1.07]`` -> ``x1.020 (0.970-1.070)``."""
    if _missing(value):
        return "-"
    text = f"x{value:.3f}"
    if interval:
        text += f" ({interval[0]:.3f}-{interval[1]:.3f})"
    return text


def human_timing(timing: Any) -> str:
    """A median with its spread and the unstable mark: ``12.34 ms ±3.1%`` / ``12.34 ms ±25.0% !``."""
    if timing is None or _missing(getattr(timing, "median", None)):
        return "-"
    text = human_ms(timing.median)
    spread = human_spread(getattr(timing, "rel_spread", None))
    if spread:
        text += " " + spread
    if getattr(timing, "unstable", False):
        text += " " + UNSTABLE_MARK
    return text


def shape_text(shape: list[int]) -> str:
    return "(" + ", ".join(str(d) for d in shape) + ")"


# --- view tables -------------------------------------------------------------------------
#: a view column whose name ends with this holds exact byte counts: JSON and CSV keep the integers,
#: the terminal, the TUI and HTML show them in binary units under the name without the suffix
BYTES_SUFFIX = "_bytes"


def column_label(column: Any) -> str:
    """A view column's heading where people read it: ``peak_bytes`` -> ``peak``."""
    name = str(column)
    return name[: -len(BYTES_SUFFIX)] if name.endswith(BYTES_SUFFIX) and len(name) > len(BYTES_SUFFIX) else name


def view_cell(column: Any, value: Any) -> Any:
    """A view cell as people read it: a byte count in a ``*_bytes`` column in binary units
    (``1.5 MiB``), anything else unchanged (each front end formats it as before)."""
    if str(column).endswith(BYTES_SUFFIX) and isinstance(value, (int, float)) and not isinstance(value, bool):
        return human_bytes(value)
    return value
