"""The sweep folder: its manifest, each point's status and files, read back for reports and the TUI."""
from __future__ import annotations

import dataclasses
import json
import os
import platform
import stat
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from inspector.errors import InspectorError, OptionError
from inspector.files import write_text
from inspector.sweep.grid import AXES, MAX_POINTS, MODES, Point, point_argv, point_key

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
        if (not isinstance(status.key, str) or status.status not in ("ok", "failed")
                or not isinstance(status.params, dict)):
            raise ValueError("not a point status")
        return status


#: what the sweep itself writes at the top of its folder: no other output may be one of these
OWN_FILES = ("manifest.json", "table.csv", "table.parquet", "points")


class SweepFolder:
    """The files of one sweep. Every write is atomic; nothing outside the folder is written: the
    points folder and every point's folder are real folders, never symlinks out of it."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.points_dir = root / "points"

    def prepare(self) -> None:
        """Make the folder (and its missing parents, as ``mkdir -p``); a parent that is a file is refused."""
        if self.root.exists() and not self.root.is_dir():
            raise OptionError(f"--out {self.root}: exists and is not a folder")
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            if os.path.islink(self.points_dir):
                raise OptionError(f"--out {self.root}: points is a symlink; the sweep writes only inside its folder")
            self.points_dir.mkdir(exist_ok=True)
        except OSError as exc:
            raise OptionError(f"--out {self.root}: cannot create it ({exc.strerror or exc})") from None
        if not os.access(self.points_dir, os.W_OK | os.X_OK):
            raise OptionError(f"--out {self.root}: not writable")

    def own_point_dir(self, key: str) -> Path:
        """The point's folder, made if missing; one that is a symlink (or anything but a folder) is
        refused: writing through it would replace files outside the sweep folder."""
        pdir = self.point_dir(key)
        try:
            pdir.mkdir(exist_ok=True)
        except FileExistsError:
            pass
        except OSError as exc:
            raise InspectorError(f"cannot create {pdir}: {exc.strerror or exc}") from None
        check_own_dir(pdir)
        return pdir

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
        write_text(self.own_point_dir(status.key) / "status.json", json.dumps(data, indent=2) + "\n")

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


def check_own_dir(path: Path) -> None:
    """``path`` is a real folder (``lstat``): not a symlink, file or anything else."""
    try:
        info = os.lstat(path)
    except OSError as exc:
        raise InspectorError(f"{path}: {exc.strerror or exc}") from None
    if not stat.S_ISDIR(info.st_mode):
        what = "a symlink" if stat.S_ISLNK(info.st_mode) else "not a folder"
        raise InspectorError(f"{path} is {what}: a sweep writes only inside its own folder; remove it")


def is_sweep_folder(path: str | Path) -> bool:
    path = Path(path)
    return path.is_dir() and (path / "manifest.json").is_file() and (path / "points").is_dir()


def load_sweep(root: Path) -> tuple[dict[str, Any], list[Point], dict[str, PointStatus]]:
    """A sweep folder read back: its manifest, its points and their statuses (for reports and the TUI)."""
    folder = SweepFolder(root)
    data = folder.read_manifest()
    if data is None or not isinstance(data.get("points"), list):
        raise InspectorError(f"{root} is not a sweep folder (no readable manifest.json)")
    grid_data = data["grid"] if isinstance(data.get("grid"), dict) else {}
    mode = grid_data["mode"] if grid_data.get("mode") in MODES else "inspect"
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
