"""Human-readable numbers, shared by every front end (terminal, HTML, TUI)."""
from __future__ import annotations

from typing import Any


def human_count(n: Any, sep: str = "") -> str:
    """1234567 -> '1.23M' (``sep`` between number and unit: '' or ' ')."""
    if n is None:
        return "-"
    for unit, size in (("T", 1e12), ("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if abs(n) >= size:
            return f"{n / size:.2f}{sep}{unit}"
    return str(n)


def human_bytes(n: Any) -> str:
    if n is None:
        return "-"
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(value) < 1024 or unit == "TiB":
            return f"{int(value)} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return str(n)


def human_ms(ms: Any) -> str:
    if ms is None or ms != ms:
        return "-"
    return f"{ms / 1000:.2f} s" if ms >= 1000 else f"{ms:.2f} ms" if ms >= 1 else f"{ms * 1000:.0f} µs"
