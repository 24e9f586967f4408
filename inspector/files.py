"""Atomic file writes: a temporary file in the target's folder, then ``os.replace``.

A crash or Ctrl-C mid-write leaves the previous file intact and no partial one.
"""
from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from pathlib import Path
from typing import Iterator

from inspector.errors import InspectorError


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path next to ``target``; on success it replaces ``target``."""
    target = Path(target)
    folder = target.parent if str(target.parent) else Path(".")
    if not folder.is_dir():
        raise InspectorError(f"cannot write {target}: folder {folder} does not exist")
    _refuse_special(target)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=folder)
    except OSError as exc:
        raise InspectorError(f"cannot write {target}: {exc.strerror or exc}") from None
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.chmod(tmp_path, _mode_for(target))
        _refuse_special(target)  # again: it may have changed while the report was written
        os.replace(tmp_path, target)
    except OSError as exc:
        raise InspectorError(f"cannot write {target}: {exc.strerror or exc}") from None
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp_path.unlink()


def _refuse_special(target: Path) -> None:
    """Only regular files are replaced: ``os.replace`` onto a device node (``/dev/null`` as root),
    a FIFO or a socket would swap the node for a plain file."""
    try:
        info = os.stat(target)
    except (FileNotFoundError, NotADirectoryError):
        return
    except OSError as exc:
        raise InspectorError(f"cannot write {target}: {exc.strerror or exc}") from None
    if not stat.S_ISREG(info.st_mode):
        raise InspectorError(f"cannot write {target}: it is {special_kind(info.st_mode)}, not a regular file")


def _mode_for(target: Path) -> int:
    """An existing file keeps its mode; a new one gets the usual 0666 less the umask (mkstemp makes 0600)."""
    try:
        return target.stat().st_mode & 0o777
    except FileNotFoundError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


def write_text(target: str | os.PathLike[str], text: str) -> None:
    """``text`` as UTF-8. A lone surrogate (a non-UTF-8 byte of an argument, as Python keeps it) is
    written as ``\\udcff``: in JSON that is the escape that reads back as the same string."""
    with atomic_path(target) as tmp:
        tmp.write_text(text, encoding="utf-8", errors="backslashreplace")


def read_regular(path: str | os.PathLike[str], *, limit: int = 64 * 2**20, what: str = "file") -> bytes:
    """The bytes of ``path``, which must be a regular file of at most ``limit`` bytes.

    Opened with ``O_NONBLOCK`` and checked with ``fstat`` before reading, so a FIFO, a
    device or a socket named where a file should be is refused instead of blocking or
    streaming forever.
    """
    path = Path(path)
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise InspectorError(f"no such {what}: {path}") from None
    except IsADirectoryError:
        raise InspectorError(f"{path} is a folder, not a {what}") from None
    except OSError as exc:
        raise InspectorError(f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise InspectorError(f"{path} is not a regular file ({special_kind(info.st_mode)}): refused")
        if info.st_size > limit:
            raise InspectorError(f"{path} is {info.st_size} bytes, more than the {limit} a {what} may have")
        chunks = []
        remaining = limit + 1
        while remaining > 0:
            chunk = os.read(fd, min(remaining, 1 << 20))
            if not chunk:
                break
            chunks.append(chunk)
            remaining -= len(chunk)
        data = b"".join(chunks)
    except OSError as exc:
        raise InspectorError(f"cannot read {path}: {exc.strerror or exc}") from None
    finally:
        os.close(fd)
    if len(data) > limit:
        raise InspectorError(f"{path} grew past {limit} bytes while being read")
    return data


def special_kind(mode: int) -> str:
    for test, name in ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return name
    return "not a regular file"


#: The largest --image accepted: a 16384 x 16384 image, far beyond what any pipeline encodes.
MAX_IMAGE_PIXELS = 16384 * 16384


def check_image_file(path: Path) -> None:
    """``--image`` must be a regular file holding a readable image of a sane size; anything else
    (a FIFO that would block, a decompression bomb, a truncated file) is one line."""
    import os
    import stat
    import warnings

    from PIL import Image, UnidentifiedImageError

    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise InspectorError(f"--image {path}: no such file") from None
    except OSError as exc:
        raise InspectorError(f"--image {path}: {exc.strerror or exc}") from None
    if not stat.S_ISREG(mode):
        raise InspectorError(f"--image {path} is {special_kind(mode)}, not an image file")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as img:
                width, height = img.size
                if width * height > MAX_IMAGE_PIXELS:
                    raise InspectorError(f"--image {path}: {width}x{height} pixels is more than the "
                                      f"{MAX_IMAGE_PIXELS:,} accepted")
                img.verify()
    except InspectorError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise InspectorError(f"--image {path}: refused, too many pixels ({' '.join(str(exc).split())[:120]})") from None
    except (OSError, UnidentifiedImageError, ValueError, SyntaxError) as exc:
        raise InspectorError(f"--image {path}: not a readable image ({type(exc).__name__})") from None
