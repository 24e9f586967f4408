"""Where a run's reports go: checked together before any work, written all or named.

Before the pipeline loads, :func:`prepare` checks every output at once and returns each as an
absolute path (a plugin that changes the working folder moves nothing):

- an input is never an output: every input (the model file or folder, ``--image``, the saved runs
  of ``report`` and ``compare``, a sweep's config and own files) is compared by identity (device and
  inode, symlinks and ``a/../a`` resolved; a path not yet there by its resolved folder and name)
  with every output, and no two outputs name one file;
- a file output is a regular file or new (never a device, FIFO, socket or folder: ``os.replace``
  onto ``/dev/null`` as root would swap the device node for a file); its missing parent folders
  are created (``mkdir -p``), but a parent that is a file, a FIFO or a device is refused;
- the ``--csv`` folder is replaced as a whole (see :func:`swap_in_folder`): it is new, or holds only
  CSV files, and nothing else (no other output, no input) lies inside it;
- every folder written in takes a new file (probed by creating and removing one, which also
  catches read-only mounts and, as root, what permission bits would not).

After measuring, every report is rendered first, in memory, so a run that fails to render replaces
nothing; then each output is written atomically, a failed write does not stop the others, and the
failures are named in one line (exit 2).
"""
from __future__ import annotations

import contextlib
import os
import shutil
import stat
import tempfile
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Optional

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
    """One file output on its own, its folder required to exist (see :func:`prepare` for all at once)."""
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
    """A folder written into (``tui --export-dir``): it may be missing, but its parent must exist."""
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


# --- identity ----------------------------------------------------------------------------------

def _real(path: Path) -> str:
    """The resolved path (symlinks and ``..`` followed as the system would; a missing tail kept)."""
    return os.path.normcase(os.path.realpath(path))


def identity(path: Path) -> set[tuple[Any, ...]]:
    """What names one file: its resolved path and, when it exists, its device and inode (a hard
    link or a bind mount has another path but the same inode)."""
    keys: set[tuple[Any, ...]] = {("path", _real(path))}
    try:
        info = os.stat(path)
    except (OSError, ValueError):
        return keys
    keys.add(("inode", info.st_dev, info.st_ino))
    return keys


def _inside(path: Path, folder: Path) -> bool:
    """``path`` is ``folder`` or lies under it, both resolved."""
    p, f = _real(path), _real(folder)
    try:
        return os.path.commonpath([p, f]) == f
    except ValueError:  # different drives
        return False


def _absolute(path: Path) -> Path:
    """``path`` made absolute against the working folder now, without resolving ``..`` by hand
    (``a/../b`` with ``a`` a symlink is not ``b``)."""
    return path if path.is_absolute() else Path(os.getcwd()) / path


def _first_existing(path: Path) -> Path:
    p = path
    while not os.path.lexists(p) and p != p.parent:
        p = p.parent
    return p


def _check_parents(option: str, path: Path, shown: Optional[Path] = None) -> None:
    """The nearest existing folder above ``path`` must be a folder; the missing ones are made later."""
    above = _first_existing(path.parent)
    _require_folder(option, shown or path, above, named=str(above))


def _require_folder(option: str, shown: Any, path: Path, named: str = "") -> None:
    """Refuse, in one line, unless ``path`` is a folder; ``named``: how the line names it, after
    the option's value (nothing when it is that value)."""
    try:
        info = os.stat(path)
    except OSError as exc:
        raise OptionError(f"{option} {shown}: {named + ': ' if named else ''}{exc.strerror or exc}") from None
    if not stat.S_ISDIR(info.st_mode):
        kind = "a file" if stat.S_ISREG(info.st_mode) else special_kind(info.st_mode)
        raise OptionError(f"{option} {shown}{': ' + named if named else ''} is {kind}, not a folder")


def _make_parents(option: str, folder: Path) -> None:
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as exc:
        raise OptionError(f"{option}: cannot create folder {folder}: {exc.strerror or exc}") from None


#: what a model folder holds that its loader reads: ``model_index.json`` and everything in its subfolders
def _read_by_loader(path: Path, model_folder: Path) -> bool:
    if not _inside(path, model_folder) or not os.path.lexists(path):
        return False
    rel = os.path.relpath(_real(path), _real(model_folder))
    return rel == "model_index.json" or os.sep in rel


def prepare(files: Mapping[str, Optional[Path]], csv_dir: Optional[Path] = None, *,
            inputs: Mapping[str, Optional[Path]] | Iterable[tuple[str, Optional[Path]]] = (),
            input_folders: Mapping[str, Optional[Path]] | Iterable[tuple[str, Optional[Path]]] = (),
            folders: Mapping[str, Optional[Path]] | None = None,
            reserved: Iterable[tuple[str, Path]] = ()) -> dict[str, Optional[Path]]:
    """Check every output against every other and every input, before any work; create missing
    parent folders; return each output (by option, ``--csv`` and the ``folders`` included) as an
    absolute path.

    ``files``: file outputs by option; ``csv_dir``: the folder replaced as a whole; ``folders``:
    folders written into and kept (a sweep's ``--out``); ``inputs``: files read (a saved run, an
    image, a single-file checkpoint); ``input_folders``: model folders (``model_index.json`` and
    everything in their subfolders is read); ``reserved``: (what, path) a file output must not be,
    nor lie under (a sweep's own manifest, its points folder)."""
    ins = list(inputs.items() if isinstance(inputs, Mapping) else inputs)
    in_folders = list(input_folders.items() if isinstance(input_folders, Mapping) else input_folders)
    out: dict[str, Optional[Path]] = {}
    seen: list[tuple[set[tuple[Any, ...]], str]] = []
    given = [(label, Path(p)) for label, p in ins if p is not None]
    given_folders = [(label, Path(p)) for label, p in in_folders if p is not None]
    csv_abs = _absolute(Path(csv_dir)) if csv_dir is not None else None
    for option, path in files.items():
        if path is None:
            out[option] = None
            continue
        shown, path = path, _absolute(Path(path))  # messages name the path as it was given
        out[option] = path
        try:
            info = os.stat(path) if os.path.lexists(path) else None
        except OSError as exc:
            raise OptionError(f"{option} {shown}: {exc.strerror or exc}") from None
        if info is not None and not stat.S_ISREG(info.st_mode):
            raise OptionError(f"{option} {shown} is {special_kind(info.st_mode)}: only regular files are written")
        _check_parents(option, path, shown)
        keys = identity(path)
        for other_keys, other in seen:
            if keys & other_keys:
                raise OptionError(f"{other} and {option} name the same file {shown}: give each output its own path")
        seen.append((keys, option))
        for label, source in given:
            if keys & identity(source):
                raise OptionError(f"{option} {shown} is also the input {label}: an input is never overwritten")
        for label, model_folder in given_folders:
            if _read_by_loader(path, model_folder):
                raise OptionError(f"{option} {shown} is a file of the input {label}: an input is never overwritten")
        for what, place in reserved:
            if keys & identity(place) or _inside(path, place):
                raise OptionError(f"{option} {shown} is {what}: give the report a path of its own")
        if csv_abs is not None and _inside(path, csv_abs):
            raise OptionError(f"{option} {shown} is inside the --csv folder {csv_dir}, which the CSV tables "
                              "replace as a whole")
    if csv_abs is not None and csv_dir is not None:
        out["--csv"] = _check_csv_folder(csv_abs, given + given_folders, Path(csv_dir))
    for option, folder in (folders or {}).items():
        if folder is None:
            out[option] = None
            continue
        shown_folder, folder = folder, _absolute(Path(folder))
        out[option] = folder
        if os.path.lexists(folder):
            _require_folder(option, shown_folder, folder)
        else:
            _check_parents(option, folder, shown_folder)
    # every check passed: now make the missing folders and probe each place a file is made
    for option, path in out.items():
        if path is None:
            continue
        if option == "--csv":
            _make_parents(option, path.parent)
            probe_writable(option, path.parent)  # the tables are written into a sibling, then swapped in
        elif folders and option in folders:
            _make_parents(option, path)
            probe_writable(option, path)
        else:
            _make_parents(option, path.parent)
            probe_writable(option, path.parent)
    return out


def _check_csv_folder(absolute: Path, inputs: list[tuple[str, Path]], folder: Path) -> Path:
    """``--csv``: new, or a folder of CSV files only, since it is replaced as a whole; returned resolved
    (the swap happens where the folder really is, not to a symlink naming it)."""
    if os.path.lexists(absolute):
        try:
            info = os.stat(absolute)
        except OSError as exc:
            raise OptionError(f"--csv {folder}: {exc.strerror or exc}") from None
        if not stat.S_ISDIR(info.st_mode):
            raise OptionError(f"--csv {folder}: not a folder")
        real = Path(os.path.realpath(absolute))
        if _inside(Path(os.getcwd()), real):
            raise OptionError(f"--csv {folder} is the current folder or holds it: the tables replace the folder "
                              "as a whole; name a folder for them (--csv tables)")
        try:
            entries = list(os.scandir(real))
        except OSError as exc:
            raise OptionError(f"--csv {folder}: {exc.strerror or exc}") from None
        for entry in entries:
            if not (entry.name.lower().endswith(".csv") and entry.is_file(follow_symlinks=False)):
                what = "a folder" if entry.is_dir(follow_symlinks=False) else (
                    "a symlink" if entry.is_symlink() else (
                        "a file" if entry.is_file(follow_symlinks=False)
                        else special_kind(entry.stat(follow_symlinks=False).st_mode)))
                raise OptionError(f"--csv {folder} holds {entry.name!r} ({what}, not a CSV table): the folder is "
                                  "replaced as a whole; give a new folder or one of CSV tables only")
    else:
        _check_parents("--csv", absolute, folder)
        real = Path(os.path.realpath(absolute.parent)) / absolute.name
    for label, source in inputs:
        if _inside(source, real):
            raise OptionError(f"--csv {folder} holds the input {label}: the folder is replaced as a whole")
    return real


def check_outputs(files: dict[str, Optional[Path]], csv_dir: Optional[Path] = None) -> None:
    """Every check, before any work: ``files`` maps option name to path."""
    prepare(files, csv_dir)


def default_image_out(json_path: Optional[Path], html_path: Optional[Path]) -> Optional[Path]:
    """Where ``profile`` saves the generated image without ``--save-image``: beside the JSON (or the
    HTML), as ``STEM.png`` (the same rule as :func:`inspector.profiling.default_image_out`)."""
    for path in (json_path, html_path):
        if path is not None:
            return Path(path).with_name(Path(path).stem + ".png")
    return None


#: the largest generated image embedded in an HTML report (a 4096 x 4096 PNG is far less)
MAX_EMBEDDED_IMAGE = 64 * 2**20
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def image_beside(run_json: Path, run: Any) -> Optional[Path]:
    """The generated image a saved run may embed: only the file ``profile`` writes next to its JSON
    under the name it chooses (``STEM.png``), never whatever path the run's data names; and only a
    regular file (not a symlink to some other picture), of bounded size, that is a PNG."""
    named = (getattr(getattr(run, "pipeline", None), "image", None) or "")
    candidate = run_json.with_name(run_json.stem + ".png")
    if not isinstance(named, str) or os.path.basename(named) != candidate.name:
        return None
    try:
        info = os.lstat(candidate)
        if not stat.S_ISREG(info.st_mode) or info.st_size > MAX_EMBEDDED_IMAGE:
            return None
        fd = os.open(candidate, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
        try:
            head = os.read(fd, len(PNG_SIGNATURE))
        finally:
            os.close(fd)
    except OSError:
        return None
    return _absolute(candidate) if head == PNG_SIGNATURE else None


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
    def fill(tmp: Path) -> None:
        for name, text in tables.items():
            with open(tmp / name, "wb") as fh:  # bytes: the \r\n line ends stay as they are
                fh.write(text.encode("utf-8", "backslashreplace"))  # a lone surrogate as \\udcff
                fh.flush()
                os.fsync(fh.fileno())

    swap_in_folder(folder, fill, option="--csv")
    say(f"wrote {len(tables)} CSV files to {folder}")
    return str(folder)


def swap_in_folder(folder: Path, fill: Callable[[Path], None], *, option: str) -> None:
    """Replace ``folder`` as a whole: ``fill`` writes a new temporary sibling, then the two are
    exchanged in one ``renameat2(RENAME_EXCHANGE)`` (Linux; elsewhere two renames, undone on
    failure) and the old one removed. A full disk or a Ctrl-C while filling leaves the old folder
    as it was; the exchange itself is one system call, held from signals."""
    from inspector.runtime.signals import signals_deferred

    parent = folder.parent
    try:
        tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", suffix=".new", dir=parent))
    except OSError as exc:
        raise InspectorError(f"cannot write {option} {folder}: {exc.strerror or exc}") from None
    try:
        try:
            fill(tmp)
            os.chmod(tmp, _folder_mode(folder))
        except OSError as exc:
            raise InspectorError(f"cannot write {option} {folder}: {exc.strerror or exc}") from None
        with signals_deferred():
            if not os.path.lexists(folder):
                _rename(tmp, folder, option)
                return
            info = os.lstat(folder)
            if not stat.S_ISDIR(info.st_mode):  # it changed since the check: replace nothing
                raise InspectorError(f"cannot write {option} {folder}: it is no longer a folder")
            if not _exchange(tmp, folder):
                old = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", suffix=".old", dir=parent))
                os.rmdir(old)
                _rename(folder, old, option)
                try:
                    _rename(tmp, folder, option)
                except BaseException:
                    with contextlib.suppress(OSError):
                        os.rename(old, folder)
                    raise
                tmp = old
    finally:
        shutil.rmtree(tmp, ignore_errors=True)  # after an exchange: the old tables


def _rename(src: Path, dst: Path, option: str) -> None:
    try:
        os.rename(src, dst)
    except OSError as exc:
        raise InspectorError(f"cannot write {option} {dst}: {exc.strerror or exc}") from None


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths atomically with Linux's ``renameat2(RENAME_EXCHANGE)``; False where the
    system or the file system cannot."""
    import ctypes
    import ctypes.util
    import sys

    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd, rename_exchange = -100, 2
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    return renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0


def _folder_mode(folder: Path) -> int:
    """An existing folder keeps its mode; a new one gets 0777 less the umask (mkdtemp makes 0700)."""
    try:
        return os.stat(folder).st_mode & 0o7777
    except OSError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o777 & ~umask
