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

import contextlib
import dataclasses
import hashlib
import itertools
import json
import os
import platform
import re
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

from .errors import InspectorError, OptionError
from .files import write_text

#: Axes of a grid, in the order they appear in point keys, tables and reports.
AXES = ("model", "size", "batch", "dtype", "attention", "scheduler", "steps")
MODES = ("inspect", "profile")
MANIFEST_VERSION = 1
#: How many points one grid may have: past this a typo (a list pasted twice) is more likely than intent.
MAX_POINTS = 10_000
DEFAULT_POINT_TIMEOUT = 1800.0
_SIZE_RE = re.compile(r"^(\d{1,6})(?:x(\d{1,6}))?$")
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]{0,99}$")
_STDERR_TAIL = 64 * 1024


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
    import tomllib

    if not path.is_file():
        raise OptionError(f"--config {path}: no such file" if not path.exists() else f"--config {path}: not a regular file")
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


def check_points(points: list[Point], command_lookup: Callable[[str], Any]) -> None:
    """Parse every point's command line with the CLI's own parser before anything runs, so a bad
    value (an unknown dtype, an option the mode lacks) stops the sweep at once, in one line."""
    import click

    reserved = {"--json", "--html", "--csv", "--save-image", "--trace"}
    for point in points:
        for arg in point.argv:
            if arg.split("=", 1)[0] in reserved:
                raise OptionError(f"{arg}: the sweep chooses each point's output files itself")
        command = command_lookup(point.argv[0])
        try:
            with command.make_context(point.argv[0], list(point.argv[1:]), resilient_parsing=False) as _ctx:
                pass
        except click.exceptions.Exit:
            raise OptionError("a point's options ask for help or the version instead of a measurement") from None
        except click.UsageError as exc:
            raise OptionError(f"point {point.label or point.key}: {exc.format_message()}") from None


# --- versions and machine --------------------------------------------------------------

def versions() -> dict[str, str | None]:
    """What a point's numbers depend on: a point measured under other versions is measured again."""
    out: dict[str, str | None] = {"python": platform.python_version()}
    for dist in ("ldm-inspector", "torch", "diffusers", "transformers"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = None
    return out


def machine() -> dict[str, Any]:
    import psutil

    return {"platform": platform.platform(), "machine": platform.machine(), "cpus": os.cpu_count(),
            "memory_bytes": psutil.virtual_memory().total, "hostname": platform.node()}


# --- the sweep folder ------------------------------------------------------------------

@dataclass
class PointStatus:
    """What became of one point. ``status``: ``ok`` or ``failed``; ``reason`` says why it failed."""

    key: str
    params: dict[str, Any]
    status: str
    reason: str | None = None
    exit_code: int | None = None
    seconds: float | None = None
    versions: dict[str, str | None] = field(default_factory=dict)
    argv: list[str] = field(default_factory=list)
    executor: str = "local"
    finished: float | None = None
    skipped: bool = False

    @classmethod
    def from_dict(cls, data: Any) -> PointStatus:
        if not isinstance(data, dict):
            raise ValueError("not an object")
        known = {f.name for f in dataclasses.fields(cls)}
        kwargs = {k: v for k, v in data.items() if k in known and k != "skipped"}
        status = cls(**kwargs)
        if not isinstance(status.key, str) or status.status not in ("ok", "failed") or not isinstance(status.params, dict):
            raise ValueError("not a point status")
        return status


class SweepFolder:
    """The files of one sweep. Every write is atomic; nothing outside the folder is written."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.points_dir = root / "points"

    def prepare(self) -> None:
        if self.root.exists() and not self.root.is_dir():
            raise OptionError(f"--out {self.root}: exists and is not a folder")
        parent = self.root.parent if str(self.root.parent) else Path(".")
        if not parent.is_dir():
            raise OptionError(f"--out {self.root}: folder {parent} does not exist")
        try:
            self.points_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise OptionError(f"--out {self.root}: cannot create it ({exc.strerror or exc})") from None
        if not os.access(self.points_dir, os.W_OK | os.X_OK):
            raise OptionError(f"--out {self.root}: not writable")

    def point_dir(self, key: str) -> Path:
        return self.points_dir / key

    def run_path(self, key: str) -> Path:
        return self.point_dir(key) / "run.json"

    def read_status(self, key: str) -> PointStatus | None:
        path = self.point_dir(key) / "status.json"
        try:
            if not path.is_file() or path.stat().st_size > 1_000_000:
                return None
            return PointStatus.from_dict(json.loads(path.read_text(encoding="utf-8")))
        except (OSError, ValueError, TypeError):
            return None  # unreadable: measure the point again

    def write_status(self, status: PointStatus) -> None:
        data = dataclasses.asdict(status)
        data.pop("skipped", None)
        write_text(self.point_dir(status.key) / "status.json", json.dumps(data, indent=2) + "\n")

    def read_manifest(self) -> dict[str, Any] | None:
        path = self.root / "manifest.json"
        try:
            if not path.is_file() or path.stat().st_size > 10_000_000:
                return None
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return data if isinstance(data, dict) else None

    def write_manifest(self, manifest: dict[str, Any]) -> None:
        write_text(self.root / "manifest.json", json.dumps(manifest, indent=2, ensure_ascii=False) + "\n")


def is_sweep_folder(path: str | Path) -> bool:
    path = Path(path)
    return path.is_dir() and (path / "manifest.json").is_file() and (path / "points").is_dir()


# --- running points ----------------------------------------------------------------------

@dataclass
class Outcome:
    """What running one point's process gave: its exit code (negative: killed by that signal),
    its stderr, seconds, whether it ran past its limit, and the files it wrote (name -> bytes,
    when it ran elsewhere and the files came back)."""

    exit_code: int | None
    stderr: str
    seconds: float
    timed_out: bool = False
    error: str | None = None
    files: dict[str, bytes] = field(default_factory=dict)


def point_command(point: Point, out_dir: str | os.PathLike[str], html: bool = True) -> list[str]:
    """The full command of one point: this Python, the CLI, and outputs inside ``out_dir``.

    ``-c`` rather than ``-m`` so the process does not put its working folder first on ``sys.path``;
    it runs with the point's own folder as working folder anyway."""
    argv = [sys.executable]
    if sys.version_info >= (3, 11):
        argv.append("-P")
    argv += ["-c", "from inspector.cli import main; main()", *point.argv, "--json", str(Path(out_dir) / "run.json")]
    if html:
        argv += ["--html", str(Path(out_dir) / "report.html")]
    return argv


_CHILDREN: set[subprocess.Popen] = set()
_CHILDREN_LOCK = threading.Lock()


def run_process(command: list[str], cwd: str | os.PathLike[str], timeout: float | None,
                env: dict[str, str] | None = None) -> Outcome:
    """Run one point in its own process group; past ``timeout`` the whole group is killed."""
    start = time.perf_counter()
    child_env = dict(os.environ if env is None else env)
    child_env.setdefault("PYTHONUNBUFFERED", "1")
    try:
        proc = subprocess.Popen(command, cwd=cwd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, env=child_env, start_new_session=True)
    except OSError as exc:
        return Outcome(None, "", 0.0, error=f"could not start: {exc.strerror or exc}")
    with _CHILDREN_LOCK:
        _CHILDREN.add(proc)
    timed_out = False
    try:
        try:
            _, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
            _kill_group(proc)
            _, err = proc.communicate()
    finally:
        with _CHILDREN_LOCK:
            _CHILDREN.discard(proc)
    text = err.decode("utf-8", "replace")[-_STDERR_TAIL:] if err else ""
    return Outcome(proc.returncode, text, time.perf_counter() - start, timed_out=timed_out)


def _kill_group(proc: subprocess.Popen) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)


def kill_all_points() -> None:
    """Stop every point still running (Ctrl-C on the sweep)."""
    with _CHILDREN_LOCK:
        running = list(_CHILDREN)
    for proc in running:
        _kill_group(proc)


def failure_reason(outcome: Outcome, timeout: float | None) -> str | None:
    """None for a clean exit; else one line that says why the point failed."""
    if outcome.error:
        return outcome.error
    if outcome.timed_out:
        return f"timed out after {timeout:g} s (killed)"
    code = outcome.exit_code
    if code == 0:
        return None
    last = next((line.strip() for line in reversed(outcome.stderr.splitlines()) if line.strip()), "")
    if code is not None and code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        why = f"killed by {name}" + (" (out of memory?)" if -code == signal.SIGKILL else "")
        return why + (f": {last}" if last else "")
    if last.startswith("error: "):
        last = last[len("error: "):]
    return f"exit {code}: {last}" if last else f"exit {code}"


# --- the sweep ------------------------------------------------------------------------

@dataclass
class SweepSettings:
    out: Path
    timeout: float | None = DEFAULT_POINT_TIMEOUT
    jobs: int | None = None
    executor: str = "local"
    address: str | None = None
    retry_failed: bool = False
    point_reports: bool = True


def default_jobs(mode: str, jobs: int | None) -> int:
    """Static points run in parallel (one per CPU, at most 8); timed points one at a time, since
    two timed points on one device measure each other."""
    if jobs is not None:
        return jobs
    if mode == "profile":
        return 1
    return max(1, min(os.cpu_count() or 1, 8))


def plan(folder: SweepFolder, points: list[Point], retry_failed: bool) -> tuple[list[Point], dict[str, PointStatus]]:
    """Which points to run now, and the statuses of those kept from an earlier run."""
    current = versions()
    todo, kept = [], {}
    for point in points:
        status = folder.read_status(point.key)
        done_before = (status is not None and status.versions == current and status.params == point.params
                       and (status.status == "failed" or folder.run_path(point.key).is_file()))
        if done_before and not (retry_failed and status.status == "failed"):
            status.skipped = True
            kept[point.key] = status
        else:
            todo.append(point)
    return todo, kept


def manifest(grid: Grid, settings: SweepSettings, jobs: int, points: list[Point], previous: dict[str, Any] | None) -> dict[str, Any]:
    history = list((previous or {}).get("history") or [])[-99:]
    history.append({"started": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "argv": sys.argv[1:],
                    "executor": settings.executor, "jobs": jobs})
    return {
        "manifest_version": MANIFEST_VERSION,
        "grid": grid.to_dict(),
        "points": [{"key": p.key, "params": p.params} for p in points],
        "versions": versions(),
        "machine": machine(),
        "execution": {
            "executor": settings.executor, "address": settings.address, "jobs": jobs,
            "timeout_s": settings.timeout,
            "how": (f"{jobs} point(s) at a time" + (" on a Ray cluster" if settings.executor == "ray" else " on this machine")
                    + ("; timed points one at a time unless --jobs says otherwise" if grid.mode == "profile" else "")),
        },
        "history": history,
    }


ProgressFn = Callable[[PointStatus], None]


def run_sweep(grid: Grid, settings: SweepSettings, *, on_start: Callable[[int, int], None] | None = None,
              on_point: ProgressFn | None = None) -> tuple[list[Point], dict[str, PointStatus]]:
    """Run every point not already measured; return all points and every point's status."""
    grid = normalize(grid)
    points = expand(grid)
    from .cli import app as cli_app
    from .precheck import check_source

    for model in grid.model:  # every point of an unknown model would fail: say so now, with suggestions
        check_source(model, allow_download="--allow-download" in grid.args)
    check_points(points, lambda name: cli_app.commands[name])
    folder = SweepFolder(settings.out)
    folder.prepare()
    jobs = default_jobs(grid.mode, settings.jobs)
    todo, statuses = plan(folder, points, settings.retry_failed)
    folder.write_manifest(manifest(grid, settings, jobs, points, folder.read_manifest()))
    if on_start is not None:
        on_start(len(points), len(todo))
    if todo:
        if settings.executor == "ray":
            from .sweep_ray import run_points_ray

            runner = run_points_ray
        elif settings.executor == "local":
            runner = run_points_local
        else:
            raise OptionError(f"--executor {settings.executor!r}: choose local or ray")

        def record(point: Point, outcome: Outcome, executor: str) -> None:
            status = finish_point(folder, point, outcome, settings.timeout, executor)
            statuses[point.key] = status
            if on_point is not None:
                on_point(status)

        try:
            runner(todo, folder, settings, jobs, record)
        finally:  # interrupted or not, the table holds every point finished so far
            write_table(folder, points, statuses)
    else:
        write_table(folder, points, statuses)
    return points, statuses


def finish_point(folder: SweepFolder, point: Point, outcome: Outcome, timeout: float | None, executor: str) -> PointStatus:
    """Write what one point gave (its files, when they came back from elsewhere) and its status."""
    pdir = folder.point_dir(point.key)
    pdir.mkdir(parents=True, exist_ok=True)
    for name, content in outcome.files.items():
        if name in ("run.json", "report.html"):  # names we chose; anything else is not ours to write
            with _atomic_bytes(pdir / name) as fh:
                fh.write(content)
    write_text(pdir / "stderr.txt", outcome.stderr)
    reason = failure_reason(outcome, timeout)
    run_path = folder.run_path(point.key)
    if reason is None and not run_path.is_file():
        reason = "the point exited 0 but wrote no run.json"
    if reason is None:
        reason = _check_run(run_path)
    status = PointStatus(key=point.key, params=point.params, status="failed" if reason else "ok", reason=reason,
                         exit_code=outcome.exit_code, seconds=round(outcome.seconds, 3), versions=versions(),
                         argv=point.argv, executor=executor, finished=time.time())
    folder.write_status(status)
    return status


@contextlib.contextmanager
def _atomic_bytes(target: Path):
    from .files import atomic_path

    with atomic_path(target) as tmp:
        with tmp.open("wb") as fh:
            yield fh


def _check_run(path: Path) -> str | None:
    from .reports import json_report

    try:
        json_report.load(path)
    except InspectorError as exc:
        return f"its run.json does not load: {exc}"
    return None


def run_points_local(points: list[Point], folder: SweepFolder, settings: SweepSettings, jobs: int,
                     record: Callable[[Point, Outcome, str], None]) -> None:
    """Each point in its own process on this machine, ``jobs`` at a time."""
    from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait

    def one(point: Point) -> tuple[Point, Outcome]:
        pdir = folder.point_dir(point.key)
        pdir.mkdir(parents=True, exist_ok=True)
        for stale in ("run.json", "report.html"):  # a rerun must not keep the last attempt's files
            with contextlib.suppress(FileNotFoundError):
                (pdir / stale).unlink()
        command = point_command(point, pdir.resolve(), html=settings.point_reports)
        return point, run_process(command, pdir, settings.timeout)

    pool = ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="sweep-point")
    pending = set()
    queue = list(points)
    try:
        while queue or pending:
            while queue and len(pending) < jobs:
                pending.add(pool.submit(one, queue.pop(0)))
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                point, outcome = future.result()
                record(point, outcome, "local")
    except BaseException:
        queue.clear()
        kill_all_points()
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


# --- the table ---------------------------------------------------------------------------

TABLE_LEAD = ["point", "status", "reason", "seconds", *AXES]


def table_rows(folder: SweepFolder, points: list[Point], statuses: dict[str, PointStatus]) -> tuple[list[str], list[dict[str, Any]]]:
    """One row per point and component (components.csv of each point, prefixed by its parameters),
    a ``(pipeline)`` row for the end-to-end call of profiled points, and one row per failed point."""
    from .reports import csv_report, json_report

    columns: list[str] = list(TABLE_LEAD)
    rows: list[dict[str, Any]] = []
    for point in points:
        status = statuses.get(point.key)
        lead = {"point": point.key, "status": status.status if status else "not run",
                "reason": status.reason if status else None, "seconds": status.seconds if status else None,
                **{axis: point.params.get(axis) for axis in AXES}}
        run = None
        if status is not None and status.status == "ok":
            try:
                run = json_report.load(folder.run_path(point.key))
            except InspectorError as exc:
                lead.update(status="failed", reason=f"its run.json does not load: {exc}")
        if run is None:
            rows.append(lead)
            continue
        for axis, value in run_axes(run).items():  # an axis the grid left out: what the point really ran with
            if lead.get(axis) is None:
                lead[axis] = value
        comp_columns, comp_rows = csv_report.tables(run)["components.csv"]
        for name in comp_columns:
            if name not in columns:
                columns.append(name)
        for row in comp_rows:
            rows.append({**lead, **row})
        plan_row = memory_plan_row(run)
        if plan_row is not None:
            for name in plan_row:
                if name not in columns:
                    columns.append(name)
            rows.append({**lead, **plan_row})
        if run.pipeline is not None:
            p = run.pipeline
            extra = {"component": "(pipeline)", "kind": "pipeline", "present": True, "time_ms_median": p.total,
                     "pipeline_it_per_s": p.it_per_s, "pipeline_steps": p.num_steps,
                     "pipeline_overhead_ratio": p.overhead_ratio, "pipeline_error": p.error,
                     "memory_bytes_peak": p.memory.peak if p.memory else None}
            for name in extra:
                if name not in columns:
                    columns.append(name)
            rows.append({**lead, **extra})
    return columns, rows


def point_figures(run: Any) -> dict[str, Any]:
    """The figures a sweep's summary shows per point, as its run recorded them: parameters and
    FLOPs of the present components (their sum: the totals row of the point's own table), the
    predicted peak with everything on the device, and, when profiled, the end-to-end time."""
    present = [c for c in run.components if c.present]
    row = memory_plan_row(run) or {}
    pipeline = run.pipeline
    return {
        "parameters": sum(c.parameters.total for c in present if c.parameters) if present else None,
        "flops": sum(c.flops for c in present if c.flops) or None,
        "predicted_peak": row.get("predicted_peak_bytes"),
        "end_to_end_ms": pipeline.total if pipeline is not None and not pipeline.error and pipeline.total else None,
        "end_to_end_unstable": bool(pipeline is not None and "total" in pipeline.unstable),
    }


def run_axes(run: Any) -> dict[str, Any]:
    """The sweep's axes as one point's run records them (dtype, steps, ...), for the columns of
    axes the grid did not vary: the table says what ran, never leaves it blank."""
    inputs, settings = run.inputs, run.profile
    size = f"{inputs.height}" if inputs.height == inputs.width else f"{inputs.height}x{inputs.width}"
    axes = {"model": run.model.source, "size": size, "batch": inputs.batch_size, "dtype": run.environment.dtype}
    if settings is not None:  # the attention backend, scheduler and steps matter (and are recorded) when timed
        axes.update(attention=settings.attention, scheduler=settings.scheduler, steps=inputs.steps)
    return {axis: value for axis, value in axes.items() if value is not None}


#: the placement a sweep charts and judges: the pipeline as most people run it
PLAN_MODE, PLAN_VAE = "all on device", "plain"


def memory_plan_row(run: Any) -> dict[str, Any] | None:
    """A ``(memory plan)`` row: the point's predicted peak with everything on the device, and, when
    the point ran with ``--fits``, the verdict, the usable memory and the largest batch and size."""
    plan = getattr(run, "memory_plan", None)
    if plan is None or not plan.placements:
        return None
    base = next((p for p in plan.placements if p.mode == PLAN_MODE and p.vae == PLAN_VAE), plan.placements[0])
    row: dict[str, Any] = {"component": "(memory plan)", "kind": "memory_plan", "predicted_peak_bytes": base.peak,
                           "predicted_placement": f"{base.mode}, {base.vae} VAE decode"}
    verdict = next((v for v in plan.verdicts if v.mode == base.mode and v.vae == base.vae), None)
    if verdict is not None:
        row.update(fits_target=plan.target, fits_usable_bytes=verdict.usable, fits_verdict=verdict.verdict,
                   fits_max_batch=verdict.max_batch, fits_max_size=verdict.max_size)
    return row


def write_table(folder: SweepFolder, points: list[Point], statuses: dict[str, PointStatus]) -> list[Path]:
    """``table.csv`` (spreadsheet-safe cells) and ``table.parquet`` (typed columns), atomically."""
    from .files import atomic_path
    from .reports import csv_report

    columns, rows = table_rows(folder, points, statuses)
    csv_path = folder.root / "table.csv"
    write_text(csv_path, csv_report.render(columns, rows))
    parquet_path = folder.root / "table.parquet"
    frame = parquet_frame(columns, rows)
    with atomic_path(parquet_path) as tmp:
        frame.to_parquet(tmp, index=False)
    return [csv_path, parquet_path]


def parquet_frame(columns: list[str], rows: list[dict[str, Any]]) -> Any:
    """A frame Parquet can store: a column mixing numbers and text becomes text."""
    import pandas as pd

    df = pd.DataFrame(rows, columns=columns)
    for col in columns:
        values = [row.get(col) for row in rows]
        present = [v for v in values if v is not None and not (isinstance(v, float) and v != v)]
        kinds = {type(v) for v in present}
        if kinds == {int}:  # counts stay whole numbers, with missing values as nulls
            df[col] = pd.array(values, dtype="Int64")
        elif len(kinds) > 1 and not kinds <= {int, float}:
            df[col] = [None if v is None or (isinstance(v, float) and v != v) else str(v) for v in values]
    return df


def load_sweep(root: Path) -> tuple[dict[str, Any], list[Point], dict[str, PointStatus]]:
    """A sweep folder read back: its manifest, its points and their statuses (for reports and the TUI)."""
    folder = SweepFolder(root)
    data = folder.read_manifest()
    if data is None or not isinstance(data.get("points"), list):
        raise InspectorError(f"{root} is not a sweep folder (no readable manifest.json)")
    grid_data = data.get("grid") if isinstance(data.get("grid"), dict) else {}
    mode = grid_data.get("mode") if grid_data.get("mode") in MODES else "inspect"
    points, statuses = [], {}
    for entry in data["points"][:MAX_POINTS]:
        if not isinstance(entry, dict) or not isinstance(entry.get("params"), dict):
            continue
        params = {k: v for k, v in entry["params"].items() if k in AXES and isinstance(v, (str, int))}
        key = point_key(params)
        if entry.get("key") != key:
            continue  # a key that is not ours could name a path outside the folder
        points.append(Point(params=params, key=key, argv=point_argv(mode, params)))
        status = folder.read_status(key)
        if status is not None:
            statuses[key] = status
    return data, points, statuses
