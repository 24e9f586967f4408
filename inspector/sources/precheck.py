"""Check the user's input before torch, diffusers or transformers are imported.

Importing those libraries takes seconds; a typo in a preset name or a missing folder should not.
Everything here reads only the file system, JSON configs and plugin metadata, and raises the same
one-line :class:`~inspector.errors.InspectorError` the loaders would, with the closest matches
for a misspelt name ("did you mean sd21?"). What only a loaded pipeline can tell (a corrupt weight
tensor, a scheduler that is not compatible) is still checked by the loaders.

The preset registry here is the light one: the names of the shipped preset folders, plus the
presets that entry-point plugins register, found by loading only those plugins (the built-in
component plugins are not imported).
"""
from __future__ import annotations

import json
import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

from inspector.errors import InspectorError, OptionError, SourceError, did_you_mean
from inspector.files import read_regular, special_kind
from inspector.plugin.host import Host
from inspector.sources.checkpoints import PICKLE_SUFFIXES, check_safetensors, single_file_format
from inspector.sources.configs import read_model_index
from inspector.sources.preset_files import shipped_presets

DEFAULT_MODEL = "tiny-sd"
#: pipelines that pack 2x2 latent patches into tokens (height and width: a multiple of 2 x the VAE factor)
PACKED_LATENT_PIPELINES = ("Flux",)


def preset_folders() -> dict[str, Path]:
    """Every preset name and its folder: shipped ones and those entry-point plugins register.

    Only the built-in ``presets`` plugin and the entry-point plugins are loaded (a plugin that
    imports torch at module level makes this as slow as that import; the guide asks plugins to
    import heavy libraries inside their hooks).
    """
    host = Host.default(builtins=("presets",))
    try:
        return {name: Path(p.path) for name, p in host.presets().items()}
    except Exception:  # noqa: BLE001 - a plugin's register_presets failed: the full host reports it later
        return shipped_presets()


@dataclass
class Checked:
    """What the precheck learnt about the source: its kind and, when known, its configs folder."""

    kind: str  # "preset" | "folder" | "single_file" | "hub_cache"
    configs: Path | None = None


@dataclass(frozen=True)
class Resolved:
    """What a source names: ``kind`` is ``preset``, ``folder``, ``single_file`` or ``repo_id``;
    ``path`` the preset's folder, the folder or the file (None for a repo id)."""

    kind: str
    name: str
    path: Path | None = None

    def local(self) -> Path:
        """The path of a preset, folder or file (a repo id has none)."""
        if self.path is None:
            raise ValueError(f"{self.name!r} is a {self.kind}, not a local path")
        return self.path


def resolve_source(model: str | None, presets: Mapping[str, Path]) -> Resolved:
    """The one resolution order the precheck and the loader share: a preset (shipped or a plugin's,
    which wins over a folder of the same name), an existing folder, an existing regular file, then a
    repo id. Anything else is a :class:`SourceError` in one line, naming the closest presets."""
    name = model or DEFAULT_MODEL
    if name in presets:
        return Resolved("preset", name, Path(presets[name]))
    try:
        path = Path(name).expanduser()
        mode = path.stat().st_mode if os.path.exists(path) else None
    except (RuntimeError, OSError, ValueError) as exc:  # "~nosuchuser", a NUL byte, a name too long
        shown = f"{name[:80]}{'…' if len(name) > 80 else ''}"
        raise SourceError(f"cannot use {shown!r} as a path: {' '.join(str(exc).split())[:200]}") from None
    if mode is not None and stat.S_ISDIR(mode):
        return Resolved("folder", name, path)
    if mode is not None and stat.S_ISREG(mode):
        return Resolved("single_file", name, path)
    if mode is not None:
        raise SourceError(f"{name} is {special_kind(mode)}, not a model file or folder: refused")
    if looks_like_path(name):
        raise SourceError(f"no such file or directory: {name}")
    if looks_like_repo_id(name):
        return Resolved("repo_id", name)
    known = ", ".join(sorted(presets))
    raise SourceError(f"unknown model {name!r}{did_you_mean(name, presets)}: not a preset ({known}), a path, "
                      "or a repo id")


def check_source(model: str | None, *, arch: str | None = None, weights: str | None = None,
                 allow_pickle: bool = False, allow_download: bool = False) -> Checked:
    """Resolve ``model`` the way :func:`inspector.sources.loading.load` does, without loading anything.

    Raises :class:`SourceError` for what the loader would refuse before reading any weights.
    """
    name = model or DEFAULT_MODEL
    shipped = shipped_presets()
    # plugins are loaded only when the name is not a shipped preset: the common case stays fast
    presets = shipped if name in shipped else preset_folders()
    found = resolve_source(name, presets)
    if found.kind == "preset":
        check_preset_weights(name, weights)
        return Checked("preset", found.local())
    if found.kind == "folder":
        read_model_index(found.local())
        return Checked("folder", found.local())
    if found.kind == "single_file":
        return Checked("single_file", check_single_file(found.local(), arch=arch, allow_pickle=allow_pickle,
                                                        presets=presets))
    if not allow_download and not in_hub_cache(name):
        raise SourceError(f"{name!r} is not in the local Hugging Face cache "
                          "(offline: pass --allow-download to fetch it)")
    return Checked("hub_cache")


def check_preset_weights(name: str, weights: str | None) -> None:
    if weights == "pretrained":
        raise SourceError(f"preset {name!r} ships no weights: use --weights meta or --weights random")


def check_single_file(path: Path, *, arch: str | None, allow_pickle: bool,
                      presets: dict[str, Path] | None = None) -> Path:
    """The checks the single-file loader makes before it reads tensors; returns the --arch configs folder."""

    kind = single_file_format(path, allow_pickle=allow_pickle)  # by content, not by name
    presets = preset_folders() if presets is None else presets
    if not arch:
        raise SourceError(f"{path.name} is a single-file checkpoint: name its architecture with --arch "
                          f"({', '.join(sorted(presets))})")
    if arch not in presets:
        raise SourceError(f"unknown --arch {arch!r}{did_you_mean(arch, presets)}; choose one of "
                          f"{', '.join(sorted(presets))}")
    if kind == "safetensors":
        check_safetensors(path)
    return presets[arch]


def looks_like_path(name: str) -> bool:
    return (name.startswith((".", "/", "~")) or os.sep in name.strip("/") and Path(name).suffix != ""
            or Path(name).suffix.lower() in PICKLE_SUFFIXES | {".safetensors"})


def looks_like_repo_id(name: str) -> bool:
    parts = name.split("/")
    return len(parts) == 2 and all(parts) and not name.startswith((".", "/", "~"))


def in_hub_cache(repo_id: str) -> bool:
    """Whether the local Hugging Face cache holds a snapshot of ``repo_id`` (huggingface_hub's
    constants only: the hub client itself is not imported). A ref that is not a commit hash of
    this cache is a :class:`SourceError` (:func:`hub_snapshot`)."""
    return hub_snapshot(repo_id) is not None


#: ``refs/main`` holds a 40-character commit hash; huggingface_hub writes nothing else there.
HUB_REF_BYTES = 1024
COMMIT_HASH = re.compile(r"^[0-9a-f]{40}$")


def hub_snapshot(repo_id: str, ref_name: str = "main") -> Path | None:
    """The snapshot folder of ``repo_id`` that ``refs/main`` names in the local Hugging Face cache, or
    ``None`` when it is not cached. The ref is read as data from strangers: a regular file of a few
    bytes (a FIFO would block huggingface_hub's plain read forever, ``/dev/zero`` would stream),
    holding a commit hash (``../../outside`` would name a folder outside the cache), whose snapshot
    folder lies inside the cache."""
    from huggingface_hub import constants

    repo_dir = Path(constants.HF_HUB_CACHE) / ("models--" + repo_id.replace("/", "--"))
    ref = repo_dir / "refs" / ref_name
    if not os.path.lexists(ref):
        return None
    try:
        raw = read_regular(ref, limit=HUB_REF_BYTES, what="hub cache ref")
    except InspectorError as exc:
        raise SourceError(f"{exc}: not a ref huggingface_hub writes") from None
    text = raw.decode("ascii", errors="replace").strip()
    if not COMMIT_HASH.match(text):
        raise SourceError(f"{ref} holds {text[:60]!r}, not a commit hash: refused (a ref names a snapshot of this "
                          "cache)")
    snapshot = repo_dir / "snapshots" / text
    try:
        inside = snapshot.resolve().is_relative_to(repo_dir.resolve())
    except (OSError, RuntimeError):
        inside = False
    if not inside:
        raise SourceError(f"{snapshot} lies outside the cache folder {repo_dir}: refused")
    return snapshot if snapshot.is_dir() else None


# --- sizes -----------------------------------------------------------------------

def _config(folder: Path, component: str) -> dict:
    try:
        data = json.loads(read_regular(folder / component / "config.json", limit=16 * 2**20).decode("utf-8"))
    except (InspectorError, ValueError, RecursionError):  # the loader says what is wrong with it
        return {}
    return data if isinstance(data, dict) else {}


def size_multiple_from_configs(folder: Path) -> int | None:
    """What height and width must be multiples of, read from a pipeline folder's JSON configs (the
    same rule as :attr:`inspector.plugin.context.InspectContext.size_multiple`); ``None`` when unknown."""
    try:
        index = read_model_index(folder)
    except SourceError:
        return None
    if "vae" not in index:
        return None
    channels = _config(folder, "vae").get("block_out_channels")
    if not isinstance(channels, list) or not channels:
        return None
    scale = 2 ** (len(channels) - 1)
    class_name = str(index.get("_class_name", ""))
    if class_name.startswith(PACKED_LATENT_PIPELINES):
        return scale * 2
    patch = _config(folder, "transformer").get("patch_size") if "transformer" in index else None
    return scale * (patch if isinstance(patch, int) and patch > 0 else 1)


def check_sizes(height: int | None, width: int | None, configs: Path | None) -> None:
    """Reject sizes the pipeline cannot take: a positive multiple of 8 always, and of the
    pipeline's own multiple (16 for SD3 and Flux) when its configs say so."""
    multiple = size_multiple_from_configs(configs) if configs is not None else None
    for label, value in (("height", height), ("width", width)):
        if value is None:
            continue
        if value <= 0 or value % 8:
            raise OptionError(f"--{label} {value} must be a positive multiple of 8")
        if multiple and value % multiple:
            raise OptionError(f"--{label} {value} must be a positive multiple of {multiple} for this pipeline")


# --- options that need the library's own lists -------------------------------------------

def check_scheduler(configs: Path | None, name: str | None) -> None:
    """``--scheduler NAME`` against the schedulers compatible with the one the configs declare.

    This is the one check that imports diffusers (the compatibility lists live in its scheduler
    classes); it still runs before any model is built.
    """
    if not name or configs is None:
        return
    entry = read_model_index(configs).get("scheduler")
    if not (isinstance(entry, list) and len(entry) == 2 and entry[0] == "diffusers" and isinstance(entry[1], str)
            and entry[1].isidentifier() and entry[1].endswith("Scheduler")):
        return
    import diffusers

    cls = getattr(diffusers, entry[1], None)
    if cls is None or not hasattr(cls, "_compatibles"):
        return  # the loader says what is wrong with the folder
    names = {entry[1], *(c for c in cls._compatibles if hasattr(diffusers, c))}
    if name not in names:
        raise OptionError(f"unknown scheduler {name!r}{did_you_mean(name, names)} for {configs.name}; "
                          f"choose one of {', '.join(sorted(names))}")
