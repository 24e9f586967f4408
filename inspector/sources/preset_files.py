"""Files that the shipped presets share, kept once.

Every CLIP tokenizer in ``inspector/presets/`` uses the same stand-in BPE vocabulary
(``vocab.json`` and ``merges.txt``, written by ``scripts/make_presets.py``). It lies once, in
``presets/_shared/clip-tokenizer/``; each tokenizer folder keeps its own ``tokenizer_config.json``
and ``special_tokens_map.json``, which differ between presets (pad token, length). ``_shared`` has
no ``model_index.json``, so preset discovery never takes it for a preset.

The shared files complete folders inside the shipped presets only, found by where a folder lies,
never by anything a config says: a user's folder that lacks its vocabulary is refused
(:func:`missing_vocabulary`), not completed with our stand-in.
"""
from __future__ import annotations

import os
import shutil
from importlib import resources
from pathlib import Path
from typing import Any

from inspector.errors import SourceError
from inspector.sources.configs import read_model_index

SHARED_DIR = "_shared"
#: the shared CLIP tokenizer files, and the tokenizer class whose folders take them
CLIP_TOKENIZER_DIR = "clip-tokenizer"
CLIP_TOKENIZER_FILES = ("vocab.json", "merges.txt")
CLIP_TOKENIZER_CLASS = "CLIPTokenizer"


def shipped_presets_dir() -> Path:
    return Path(str(resources.files("inspector") / "presets"))


def shipped_presets() -> dict[str, Path]:
    """The preset folders shipped in the package (each holds a ``model_index.json``)."""
    root = shipped_presets_dir()
    if not root.is_dir():
        return {}
    return {p.name: p for p in sorted(root.iterdir()) if (p / "model_index.json").is_file()}


def presets_root() -> Path:
    return shipped_presets_dir()


def shared_clip_tokenizer_dir() -> Path:
    return presets_root() / SHARED_DIR / CLIP_TOKENIZER_DIR


def _shipped_component(folder: Path) -> bool:
    """Whether ``folder`` is a component folder of a shipped preset (``presets/NAME/COMPONENT``)."""
    try:
        parts = Path(os.path.realpath(folder)).relative_to(os.path.realpath(presets_root())).parts
    except (ValueError, OSError):
        return False
    return len(parts) == 2 and not parts[0].startswith("_")


def shared_files(folder: Path, class_name: str) -> dict[str, Path]:
    """File name -> shared file, for each shared file a shipped preset's ``class_name`` folder lacks.

    Empty for any folder outside the shipped presets, whatever it holds or lacks."""
    if class_name != CLIP_TOKENIZER_CLASS or not _shipped_component(folder):
        return {}
    shared = shared_clip_tokenizer_dir()
    return {name: shared / name for name in CLIP_TOKENIZER_FILES
            if not os.path.lexists(folder / name) and (shared / name).is_file()}


def tokenizer_file_kwargs(cls: Any, folder: Path) -> dict[str, str]:
    """``from_pretrained`` keyword arguments (``vocab_file=...``) that point a shipped preset's
    tokenizer at the shared files it lacks; empty elsewhere."""
    files = shared_files(folder, getattr(cls, "__name__", ""))
    names = getattr(cls, "vocab_files_names", None) or {}
    return {key: str(files[name]) for key, name in names.items() if name in files}


def missing_vocabulary(cls: Any, folder: Path) -> list[str]:
    """The vocabulary files a tokenizer folder needs and neither holds nor (for a shipped preset)
    shares. transformers builds a tokenizer with an empty vocabulary from a folder holding none,
    so this is checked before loading. A ``tokenizer.json`` alone is a complete tokenizer."""
    names = getattr(cls, "vocab_files_names", None)
    if not isinstance(names, dict) or os.path.lexists(folder / "tokenizer.json"):
        return []
    shared = shared_files(folder, getattr(cls, "__name__", ""))
    needed = [names[key] for key in ("vocab_file", "merges_file") if isinstance(names.get(key), str)]
    return [name for name in needed if not os.path.lexists(folder / name) and name not in shared]


def materialize_preset(preset: Path, dest: Path) -> Path:
    """Copy a shipped preset to ``dest`` as a complete diffusers folder (shared files copied in), for
    loaders that read files from a folder themselves (``from_single_file(config=...)``)."""
    declared = read_model_index(preset)
    try:
        shutil.copytree(preset, dest)
        for component, entry in declared.items():
            if component.startswith("_") or not isinstance(entry, list) or len(entry) != 2:
                continue
            for name, path in shared_files(preset / component, str(entry[1])).items():
                shutil.copyfile(path, dest / component / name)
    except (OSError, shutil.Error) as exc:  # a plugin's preset folder that cannot be copied
        problems = exc.args[0] if isinstance(exc, shutil.Error) and exc.args else None
        if isinstance(problems, list) and problems and len(problems[0]) == 3:
            reason = str(problems[0][2])  # the first file that could not be copied, and why
        else:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        reason = " ".join(reason.split())[:300]
        raise SourceError(f"cannot copy the preset folder {preset}: {reason}") from None
    return dest
