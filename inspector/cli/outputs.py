"""Where a run's reports go: checked before any work, written all or named.

Before the pipeline loads, every output location is checked: its folder exists and takes a new
file (probed by creating and removing one, which also catches read-only mounts and, as root,
what permission bits would not), the path is a regular file or new (never a device, FIFO, socket
or folder: ``os.replace`` onto ``/dev/null`` as root would swap the device node for a file), and
no two outputs name the same file. After measuring, every report is rendered first, in memory, so
a run that fails to render replaces nothing; then each file is written atomically, a failed write
does not stop the others, and the failures are named in one line (exit 2).
"""
from __future__ import annotations

import os
import stat
import tempfile
from pathlib import Path
from typing import Any, Callable, Optional

from inspector.errors import InspectorError, OptionError
from inspector.files import special_kind


def _folder_of(path: Path) -> Path:
    return path.parent if str(path.parent) else Path(".")


def probe_writable(option: str, folder: Path) -> None:
    """Create and remove a file in ``folder``: the only check that sees read-only mounts and ACLs."""
    try:
        fd, name = tempfile.mkstemp(prefix=".ldm-inspector-probe.", dir=folder)
    except OSError as exc:
        raise OptionError(f"{option}: cannot write in {folder}: {exc.strerror or exc}") from None
    os.close(fd)
    try:
        os.unlink(name)
    except OSError:
        pass


def check_file_output(option: str, path: Optional[Path]) -> None:
    if path is None:
        return
    folder = _folder_of(path)
    try:
        folder_ok = folder.is_dir()
        info = os.stat(path) if os.path.lexists(path) else None
    except OSError as exc:
        raise OptionError(f"{option} {path}: {exc.strerror or exc}") from None
    if not folder_ok:
        raise OptionError(f"{option} {path}: folder {folder} does not exist")
    if info is not None and not stat.S_ISREG(info.st_mode):
        raise OptionError(f"{option} {path} is {special_kind(info.st_mode)}: only regular files are written")
    probe_writable(option, folder)


def check_folder_output(option: str, folder: Optional[Path]) -> None:
    if folder is None:
        return
    try:
        info = os.stat(folder) if os.path.lexists(folder) else None
    except OSError as exc:
        raise OptionError(f"{option} {folder}: {exc.strerror or exc}") from None
    if info is None:
        parent = _folder_of(folder)
        if not parent.is_dir():
            raise OptionError(f"{option} {folder}: folder {parent} does not exist")
        probe_writable(option, parent)
        return
    if not stat.S_ISDIR(info.st_mode):
        raise OptionError(f"{option} {folder}: not a folder")
    probe_writable(option, folder)


def _identity(path: Path) -> str:
    return os.path.normcase(os.path.realpath(path))


def check_distinct(files: dict[str, Optional[Path]], csv_dir: Optional[Path] = None) -> None:
    """No two outputs may name the same file, nor a file output a CSV file inside ``--csv``."""
    seen: dict[str, str] = {}
    for option, path in files.items():
        if path is None:
            continue
        key = _identity(path)
        if key in seen:
            raise OptionError(f"{seen[key]} and {option} name the same file {path}: give each output its own path")
        seen[key] = option
        if csv_dir is not None and _identity(_folder_of(path)) == _identity(csv_dir) and path.suffix.lower() == ".csv":
            raise OptionError(f"{option} {path} is inside --csv {csv_dir}, where the CSV tables are written")


def check_outputs(files: dict[str, Optional[Path]], csv_dir: Optional[Path] = None) -> None:
    """Every check, before any work: ``files`` maps option name to path."""
    for option, path in files.items():
        check_file_output(option, path)
    check_folder_output("--csv", csv_dir)
    check_distinct(files, csv_dir)


def default_image_out(json_path: Optional[Path], html_path: Optional[Path]) -> Optional[Path]:
    """Where ``profile`` saves the generated image without ``--save-image``: beside the JSON (or the
    HTML), as ``STEM.png`` (the same rule as :func:`inspector.profiling.default_image_out`)."""
    for path in (json_path, html_path):
        if path is not None:
            return Path(path).with_name(Path(path).stem + ".png")
    return None


def image_beside(run_json: Path, run: Any) -> Optional[Path]:
    """The generated image a saved run may embed: only the file ``profile`` writes next to its JSON
    under the name it chooses (``STEM.png``), never whatever path the run's data names."""
    named = (getattr(getattr(run, "pipeline", None), "image", None) or "")
    candidate = run_json.with_name(run_json.stem + ".png")
    if not isinstance(named, str) or os.path.basename(named) != candidate.name:
        return None
    try:
        return candidate if stat.S_ISREG(os.stat(candidate).st_mode) else None
    except OSError:
        return None


def write_all(run: Any, say: Callable[[str], None], json_path: Optional[Path] = None,
              html_path: Optional[Path] = None, csv_dir: Optional[Path] = None,
              image_file: Optional[Path] = None) -> None:
    """Render every report, then write each; a failed write is named after the others are written."""
    from inspector.runtime.signals import signals_deferred

    # each writer imported only when its output was asked for (the HTML one brings jinja2 and plotly.js)
    rendered: list[tuple[str, Callable[[], str]]] = []
    if json_path is not None:
        from inspector.reports import json_report

        text = json_report.dumps(run)
        rendered.append((str(json_path), lambda: _write_text(json_path, text, say)))
    if csv_dir is not None:
        from inspector.reports import csv_report

        tables = csv_report.render_all(run)
        rendered.append((str(csv_dir), lambda: _write_csv(csv_dir, tables, say)))
    if html_path is not None:
        from inspector.reports import html_report

        html = html_report.render(run, image_file=image_file)
        rendered.append((str(html_path), lambda: _write_text(html_path, html, say)))
    failures = []
    for _name, write in rendered:
        try:
            with signals_deferred():
                write()
        except InspectorError as exc:
            failures.append(str(exc))
    if failures:
        written = len(rendered) - len(failures)
        raise InspectorError("; ".join(failures)
                             + (f" (the other {written} output(s) were written)" if written else ""))


def _write_text(path: Path, text: str, say: Callable[[str], None]) -> str:
    from inspector.files import write_text

    write_text(path, text)
    say(f"wrote {path}")
    return str(path)


def _write_csv(folder: Path, tables: dict[str, str], say: Callable[[str], None]) -> str:
    from inspector.reports import csv_report

    written = csv_report.write_rendered(tables, folder)
    say(f"wrote {len(written)} CSV files to {folder}")
    return str(folder)
