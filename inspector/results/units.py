"""One number format for every front end (terminal, TUI, HTML, compare).

- counts (parameters, tokens, calls): thousands separators, ``1,179,648``
- FLOPs: SI prefixes with the unit, ``219.20 GFLOP``; rates ``1.23 TFLOP/s``
- bytes: binary units, ``1.5 MiB``
- times: ``µs``, ``ms`` or ``s`` by size
- a figure flagged unstable carries :data:`UNSTABLE_MARK`, explained by :data:`UNSTABLE_LEGEND`
"""
from __future__ import annotations

import re
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


def _unit_of(column: str) -> str | None:
    """The unit a plugin's column name states: ``self_cpu_ms``, ``time_ms_median`` -> ms; ``flops``,
    ``decode_flops`` -> FLOP; ``share`` -> a fraction; ``share_pct`` -> a percentage; ``*_bytes*`` -> bytes.
    A rate such as ``gflops_per_s`` names no unit here: it stays a plain number."""
    words = [w for w in str(column).lower().replace(" ", "_").split("_") if w]
    if "per" in words:
        return None
    if "ms" in words:
        return "ms"
    if "flops" in words:
        return "FLOP"
    if "bytes" in words:
        return "bytes"
    if words and words[-1] == "pct":
        return "%"
    if words and words[-1] in ("share", "fraction"):
        return "fraction"
    return None


#: a view column whose name ends with this holds exact byte counts: JSON and CSV keep the integers,
#: the terminal, the TUI and HTML show them in binary units under the name without the suffix
BYTES_SUFFIX = "_bytes"


def column_label(column: Any) -> str:
    """A view column's heading where people read it: ``peak_bytes`` -> ``peak`` (its cells say MiB)."""
    name = str(column)
    return name[: -len(BYTES_SUFFIX)] if name.endswith(BYTES_SUFFIX) and len(name) > len(BYTES_SUFFIX) else name


def is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def view_cell(value: Any, column: str = "", *, units: bool = True) -> str:
    """A cell of a plugin's table view, as every front end shows it: counts with separators, other
    numbers to 6 significant digits, or in the unit the column's name states (see :func:`_unit_of`);
    ``True``/``False`` as yes/no. Formats only: the value is never recomputed."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if not is_number(value):
        return str(value)
    unit = _unit_of(column) if units else None
    if unit == "ms":
        return human_ms(value)
    if unit == "FLOP":
        return human_flops(value)
    if unit == "bytes":
        return human_bytes(value)
    if unit == "%":
        return f"{value:.1f}%"
    if unit == "fraction":
        return human_pct(value)
    return human_count(value) if isinstance(value, int) else f"{value:.6g}"


def numeric_columns(columns: list[Any], rows: list[list[Any]]) -> list[bool]:
    """Which columns hold only numbers (missing cells aside): those are right-aligned."""
    flags = []
    for i in range(len(columns)):
        cells = [r[i] for r in rows if i < len(r) and r[i] is not None]
        flags.append(bool(cells) and all(is_number(c) for c in cells))
    return flags


#: characters a terminal acts on instead of showing: C0/C1 controls (escape sequences, bell, carriage
#: return), zero-width and bidirectional-override characters (text that reads other than it is), and
#: lone surrogates (the bytes of a non-UTF-8 argument, kept by surrogateescape: no stream encodes them)
_CONTROL = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2066-\u2069\ufeff\ud800-\udfff]")


def printable(text: Any, *, newlines: bool = False) -> str:
    """Text from a run (names, notes, errors: data from strangers) as the terminal may print it:
    every control character shown as an escape (``\x1b``), never acted on; a newline kept only
    where ``newlines`` (multi-line text), else shown as ``\n`` too."""
    def escaped(m: re.Match) -> str:
        code = ord(m.group())
        return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"

    text = _CONTROL.sub(escaped, str(text))
    return text if newlines else text.replace("\n", "\\n")
