"""Sweeps: one grid of models, sizes, batches, dtypes, attention backends, schedulers and step
counts, each point measured by ``inspect`` or ``profile`` in a process of its own.

A point that runs out of memory, crashes, is killed or hangs past its time limit fails alone,
with its reason; the others go on. Everything lands in one sweep folder::

    manifest.json              grid, mode, versions, machine, and how the points ran
    points/<key>/run.json      the point's run, the same JSON as ``inspect/profile --json``
    points/<key>/report.html   the point's own HTML report
    points/<key>/status.json   parameters, ok or failed (and why), exit code, seconds, versions
    points/<key>/stderr.txt    what the point printed on stderr
    table.csv, table.parquet   one row per point and component
    report.html                the sweep report (see ``inspector.reports.sweep_report``)

Running the same sweep again skips points already measured with the same versions (tool,
Python, torch, diffusers, transformers); ``retry_failed`` reruns the failures. Points are
data, never code: a point's command line is built here from validated values and run as an
argument list (no shell), in the point's own folder.

This module imports neither torch nor diffusers: the points do.
"""
from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

from inspector.errors import OptionError

#: Axes of a grid, in the order they appear in point keys, tables and reports.
AXES = ("model", "size", "batch", "dtype", "attention", "scheduler", "steps")
MODES = ("inspect", "profile")
MANIFEST_VERSION = 1
#: How many points one grid may have: past this a typo (a list pasted twice) is more likely than intent.
MAX_POINTS = 10_000
_SIZE_RE = re.compile(r"^(\d{1,6})(?:x(\d{1,6}))?$")
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]{0,99}$")


# --- the grid ------------------------------------------------------------------------

@dataclass
class Grid:
    """What to sweep: each axis is a list of values (an empty list: the command's default)."""

    mode: str = "inspect"
    model: list[str] = field(default_factory=list)
    size: list[str] = field(default_factory=list)
    batch: list[int] = field(default_factory=list)
    dtype: list[str] = field(default_factory=list)
    attention: list[str] = field(default_factory=list)
    scheduler: list[str] = field(default_factory=list)
    steps: list[int] = field(default_factory=list)
    #: further options passed to every point, as on the command line (``--repeats 2``)
    args: list[str] = field(default_factory=list)

    def axes(self) -> dict[str, list[Any]]:
        return {axis: list(getattr(self, axis)) for axis in AXES if getattr(self, axis)}

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass
class Point:
    """One combination of axis values, and the command line that measures it."""

    params: dict[str, Any]
    key: str
    argv: list[str]

    @property
    def label(self) -> str:
        return " ".join(f"{axis}={self.params[axis]}" for axis in AXES if axis in self.params)


def split_list(option: str, text: str | None) -> list[str]:
    """``"a,b, c"`` -> ``["a", "b", "c"]``; empty items are an error, not silently dropped."""
    if text is None:
        return []
    items = [item.strip() for item in text.split(",")]
    if any(not item for item in items):
        raise OptionError(f"{option} {text!r}: empty item in the comma-separated list")
    return items


def parse_size(text: str) -> tuple[int, int]:
    """``"512"`` -> (512, 512); ``"768x512"`` -> width 768, height 512."""
    m = _SIZE_RE.match(str(text).strip())
    if not m:
        raise OptionError(f"--size {text!r}: give SIZE or WIDTHxHEIGHT in pixels, e.g. 512 or 768x512")
    width = int(m.group(1))
    height = int(m.group(2) or m.group(1))
    for label, value in (("width", width), ("height", height)):
        if value <= 0 or value % 8 or value > 16384:
            raise OptionError(f"--size {text!r}: {label} {value} must be a positive multiple of 8, at most 16384")
    return width, height


def _positive_ints(option: str, values: Iterable[Any], limit: int) -> list[int]:
    out = []
    for value in values:
        try:
            number = int(str(value).strip())
        except ValueError:
            raise OptionError(f"{option} {value!r}: not a whole number") from None
        if not 1 <= number <= limit:
            raise OptionError(f"{option} {number}: must be between 1 and {limit}")
        out.append(number)
    return out


def _names(option: str, values: Iterable[Any]) -> list[str]:
    out = []
    for value in values:
        text = str(value).strip()
        if not _NAME_RE.match(text):
            raise OptionError(f"{option} {value!r}: not a name (letters, digits, '_', '.', '+', '-')")
        out.append(text)
    return out


def _model_names(values: Iterable[Any]) -> list[str]:
    out = []
    for value in values:
        text = str(value)
        if not text.strip() or len(text) > 4096 or any(ord(ch) < 32 for ch in text) or text.startswith("-"):
            raise OptionError(f"--model {value!r}: not a model name or path")
        out.append(text.strip())
    return out


def normalize(grid: Grid) -> Grid:
    """Check every value of the grid; a bad one is an :class:`OptionError` naming it."""
    if grid.mode not in MODES:
        raise OptionError(f"--mode {grid.mode!r}: choose inspect or profile")
    for size in grid.size:
        parse_size(size)
    sizes = [_canonical_size(s) for s in grid.size]
    normalized = Grid(
        mode=grid.mode, model=_model_names(grid.model), size=sizes,
        batch=_positive_ints("--batch", grid.batch, 4096), dtype=_names("--dtype", grid.dtype),
        attention=_names("--attention", grid.attention), scheduler=_names("--scheduler", grid.scheduler),
        steps=_positive_ints("--steps", grid.steps, 10_000), args=[str(a) for a in grid.args])
    for axis in AXES:
        values = getattr(normalized, axis)
        if len(set(map(str, values))) != len(values):
            raise OptionError(f"--{axis}: a value is listed twice")
    count = 1
    for values in normalized.axes().values():
        count *= len(values)
    if count > MAX_POINTS:
        raise OptionError(f"the grid has {count:,} points; at most {MAX_POINTS:,} in one sweep")
    return normalized


def _canonical_size(text: str) -> str:
    width, height = parse_size(text)
    return str(width) if width == height else f"{width}x{height}"


def load_toml(path: Path) -> tuple[Grid, dict[str, Any]]:
    """A grid from a TOML file: top-level ``mode``, ``args`` and the axes as lists, plus the
    sweep settings ``timeout``, ``jobs``, ``executor`` and ``address``. Unknown keys are errors."""
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # the same parser, published as tomli before it joined the standard library
        import tomli as tomllib

    if not path.is_file():
        raise OptionError(f"--config {path}: no such file" if not path.exists()
                          else f"--config {path}: not a regular file")
    try:
        with path.open("rb") as fh:
            raw = fh.read(1_000_001)
        if len(raw) > 1_000_000:
            raise OptionError(f"--config {path}: larger than 1 MB, not a sweep file")
        data = tomllib.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise OptionError(f"--config {path}: not valid TOML ({' '.join(str(exc).split())})") from None
    grid = Grid()
    settings: dict[str, Any] = {}
    for key, value in data.items():
        if key == "mode":
            if not isinstance(value, str):
                raise OptionError(f"--config {path}: mode must be a string")
            grid.mode = value
        elif key in AXES or key == "args":
            values = value if isinstance(value, list) else [value]
            if not all(isinstance(v, (str, int)) and not isinstance(v, bool) for v in values):
                raise OptionError(f"--config {path}: {key} must be a list of strings or numbers")
            setattr(grid, key, [str(v) for v in values])
        elif key in ("timeout", "jobs", "executor", "address"):
            settings[key] = value
        else:
            raise OptionError(f"--config {path}: unknown key {key!r} (known: mode, args, {', '.join(AXES)}, "
                              "timeout, jobs, executor, address)")
    return grid, settings


def point_key(params: dict[str, Any]) -> str:
    """A folder name that reads as the parameters and cannot collide: a slug plus a hash of them all."""
    parts = []
    for axis in AXES:
        if axis in params:
            value = str(params[axis])
            if axis == "model":
                value = Path(value).name or value
            parts.append(re.sub(r"[^A-Za-z0-9.+-]+", "_", value)[:40])
    digest = hashlib.sha256(json.dumps(params, sort_keys=True).encode()).hexdigest()[:8]
    return "-".join(parts + [digest])


def expand(grid: Grid) -> list[Point]:
    """Every point of the grid, in a stable order (the axes' order, values as given)."""
    axes = grid.axes()
    names = list(axes)
    points = []
    for combo in itertools.product(*(axes[n] for n in names)) if names else [()]:
        params = dict(zip(names, combo))
        points.append(Point(params=params, key=point_key(params), argv=point_argv(grid.mode, params, grid.args)))
    return points


def point_argv(mode: str, params: dict[str, Any], extra: Sequence[str] = ()) -> list[str]:
    """The ``ldm-inspector`` arguments that measure one point (outputs are added where it runs)."""
    argv = [mode]
    if "model" in params:
        argv.append(str(params["model"]))
    if "size" in params:
        width, height = parse_size(str(params["size"]))
        argv += ["--width", str(width), "--height", str(height)]
    flags = {"batch": "--batch-size", "dtype": "--dtype", "attention": "--attention", "scheduler": "--scheduler",
             "steps": "--steps"}
    for axis, flag in flags.items():
        if axis in params:
            argv += [flag, str(params[axis])]
    return argv + list(extra)


def check_points(points: list[Point], check_argv: Callable[[list[str]], None]) -> None:
    """Parse every point's command line before anything runs, so a bad value (an unknown dtype, an
    option the mode lacks) stops the sweep at once, in one line. ``check_argv`` is the CLI's own
    parser (it raises :class:`OptionError` saying what is wrong); the sweep knows no parser itself."""
    reserved = {"--json", "--html", "--csv", "--save-image", "--trace"}
    for point in points:
        for arg in point.argv:
            if arg.split("=", 1)[0] in reserved:
                raise OptionError(f"{arg}: the sweep chooses each point's output files itself")
        try:
            check_argv(list(point.argv))
        except OptionError as exc:
            raise OptionError(f"point {point.label or point.key}: {exc}") from None
