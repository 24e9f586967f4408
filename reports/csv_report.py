"""Tidy CSV tables of a run, made with pandas: one row per observation, units in column names.

Files: ``components.csv``, ``layers.csv``, ``measurements.csv`` (profile), ``steps.csv``
and ``pipeline.csv`` (profile: end-to-end figures, intervals, what is unstable), ``plugins.csv``,
``errors.csv``, one ``view_<component>_<title>.csv`` per table a plugin shows, and one
``view_pipeline_<title>.csv`` per table about the whole pipeline (predicted memory, fit verdict).
The tables are :mod:`inspector.results.tables`' (built from ``run.to_dict()``), so a run written
during ``inspect``/``profile`` and one loaded back from its JSON give byte-identical files.

A text cell that a spreadsheet would read as a formula (it starts with ``=``, ``+``,
``-``, ``@``, a tab or a carriage return) gets a leading apostrophe, per OWASP's CSV
injection guidance; numeric cells stay numeric. Header cells (a plugin names its table's
columns) are neutralized the same way. Lines end in ``\r\n`` (RFC 4180): Python's ``csv``
writer quotes a field holding a carriage return only when ``\r`` is part of the line
terminator, and an unquoted one starts a new row, with a formula, in any reader.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from inspector.errors import InspectorError
from inspector.files import atomic_path
from inspector.results.records import RunResult
from inspector.results.tables import frame as tidy_frame
from inspector.results.tables import tables

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def neutralize(value: Any) -> Any:
    if isinstance(value, str) and value.startswith(FORMULA_PREFIXES):
        return "'" + value
    return value


def frame(columns: list[str], rows: list[dict[str, Any]]) -> Any:
    """The table as a DataFrame (:func:`inspector.results.tables.frame`), every text cell a
    spreadsheet would read as a formula neutralized."""
    import pandas as pd

    df = tidy_frame(columns, rows)
    for col in df.columns:
        # pandas 3 gives text columns a string dtype, mixed ones object: both can hold formulas
        if pd.api.types.is_object_dtype(df[col]) or pd.api.types.is_string_dtype(df[col]):
            df[col] = df[col].map(neutralize)
    return df


def render(columns: list[str], rows: list[dict[str, Any]]) -> str:
    df = frame(columns, rows)
    df.columns = [neutralize(str(c)) for c in df.columns]
    return df.to_csv(index=False, lineterminator="\r\n")


def render_all(run: RunResult) -> dict[str, str]:
    """File name -> CSV text, for every table of ``run``."""
    return {name: render(columns, rows) for name, (columns, rows) in tables(run).items()}


def write(run: RunResult, folder: str | Path) -> list[Path]:
    """Write every table into ``folder`` (created if missing; its parent must exist). Each file is atomic;
    the tables are rendered before the folder is touched."""
    return write_rendered(render_all(run), folder)


def write_rendered(rendered: dict[str, str], folder: str | Path) -> list[Path]:
    """Write tables already rendered by :func:`render_all` into ``folder``, each file atomically."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise InspectorError(f"--csv {folder}: not a folder")
    if not folder.exists():
        if not (folder.parent if str(folder.parent) else Path(".")).is_dir():
            raise InspectorError(f"--csv {folder}: folder {folder.parent} does not exist")
        try:
            folder.mkdir()
        except OSError as exc:
            raise InspectorError(f"--csv {folder}: {exc.strerror or exc}") from None
    written = []
    for name, text in rendered.items():
        target = folder / name
        with atomic_path(target) as tmp:
            tmp.write_bytes(text.encode("utf-8"))  # bytes: the \r\n line ends stay as they are
        written.append(target)
    return written
