"""Checkpoint files we are handed by strangers: check them before anything reads them.

* ``.safetensors``: the header is read and checked against the file size, so a truncated or
  corrupt file, or a Git LFS pointer saved in its place, fails in one line instead of deep
  inside a loader.
* Pickle-based files (``.ckpt``, ``.bin``, ``.pt``, ``.pth``) can run code when unpickled. They
  are refused unless the user opts in; then they are read with ``torch.load(weights_only=True)``,
  passed explicitly so that ``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD`` in the environment cannot turn
  it off, and a file that needs anything beyond tensors is refused with the globals it wanted.
"""
from __future__ import annotations

import json
import re
import struct
from pathlib import Path
from typing import Any

from inspector.errors import SourceError
from inspector.files import read_regular
from inspector.sources.memory_guard import SAFETENSORS_SIZES, safetensors_bytes

LFS_POINTER = b"version https://git-lfs.github.com/spec/"
PICKLE_HINT = ("convert it to .safetensors (python -c \"import torch, safetensors.torch as s; "
               "s.save_file(torch.load('IN', weights_only=True), 'OUT.safetensors')\") or pass --allow-pickle")


ZIP_MAGIC = b"PK\x03\x04"
#: pickle protocol 2 and later start with PROTO (0x80); torch's legacy format is such a pickle
PICKLE_PROTO = 0x80


def checkpoint_format(path: Path) -> str:
    """What a weight file holds, told by its first bytes, never by its name: ``"safetensors"`` (an
    8-byte header length that fits the file, then a JSON object), ``"pickle"`` (a torch zip archive
    or a pickle stream, which can run code when loaded), ``"lfs"`` (a Git LFS pointer) or
    ``"unknown"``."""
    import os
    import stat

    try:
        info = os.stat(path)
        if not stat.S_ISREG(info.st_mode):
            return "unknown"
        with path.open("rb") as fh:
            head = fh.read(16)
    except OSError:
        return "unknown"
    if head.startswith(LFS_POINTER[:16]):
        return "lfs"
    if len(head) >= 9:
        (header_len,) = struct.unpack("<Q", head[:8])
        if header_len <= info.st_size - 8 and head[8:9] == b"{":
            return "safetensors"
    if head.startswith(ZIP_MAGIC) or (head and head[0] == PICKLE_PROTO):
        return "pickle"
    return "unknown"


#: names a pickle-based checkpoint goes by (its content decides, these only word the messages)
PICKLE_SUFFIXES = {".ckpt", ".bin", ".pt", ".pth", ".pkl"}


def single_file_format(path: Path, *, allow_pickle: bool) -> str:
    """``"safetensors"`` or ``"pickle"`` for a single-file checkpoint, told by its content (a
    safetensors file named ``.ckpt`` or ``.SAFETENSORS`` is safetensors; a pickle named
    ``.safetensors`` is a pickle), or :class:`SourceError`: a pickle without ``allow_pickle``, an
    LFS pointer, anything else. A safetensors file's header is checked by the caller
    (:func:`check_safetensors`), after the options that need no reading."""
    kind = checkpoint_format(path)
    suffix = path.suffix.lower()
    if kind == "pickle":
        if not allow_pickle:
            named = "" if suffix in PICKLE_SUFFIXES else f" (whatever its name says: {path.suffix or 'no suffix'})"
            raise SourceError(f"{path.name} is a pickle-based checkpoint{named}, which can run code when loaded; "
                              + PICKLE_HINT.replace("IN", path.name))
        return "pickle"
    if kind == "safetensors" or suffix == ".safetensors":
        return "safetensors"  # a broken one: check_safetensors says exactly how
    if kind == "lfs":
        raise SourceError(f"{path} is a Git LFS pointer, not the weights: run 'git lfs pull'")
    if suffix in PICKLE_SUFFIXES:
        if not allow_pickle:
            raise SourceError(f"{path.name} is a pickle-based checkpoint, which can run code when loaded; "
                              + PICKLE_HINT.replace("IN", path.name))
        return "pickle"  # torch.load(weights_only=True) says what is wrong with it
    raise SourceError(f"{path.name}: a single-file checkpoint must be .safetensors (or, with --allow-pickle, "
                      ".ckpt/.bin/.pt)")


def is_lfs_pointer(path: Path) -> bool:
    try:
        with path.open("rb") as fh:
            return fh.read(len(LFS_POINTER)) == LFS_POINTER
    except OSError:
        return False


def check_safetensors(path: Path) -> dict[str, Any]:
    """Raise :class:`SourceError` unless ``path`` is a complete safetensors file; return its header.

    The header is checked for the shape the format promises (tensor name -> dtype, shape of
    non-negative integers, two offsets) so that nothing downstream meets a surprise type."""
    import os
    import stat

    try:
        size = path.stat().st_size
        if not stat.S_ISREG(os.stat(path).st_mode):
            raise SourceError(f"{path} is not a regular file: refused")
        with path.open("rb") as fh:
            head = fh.read(8)
            if is_lfs_pointer(path):
                raise SourceError(f"{path} is a Git LFS pointer, not the weights: run 'git lfs pull' "
                                  "(or download the file itself)")
            if len(head) < 8:
                raise SourceError(f"{path} is not a safetensors file: {size} bytes, too short for a header")
            (header_len,) = struct.unpack("<Q", head)
            if header_len > size - 8 or header_len > 100 * 2**20:
                raise SourceError(f"{path} is not a valid safetensors file: header length {header_len} "
                                  f"does not fit in {size} bytes (truncated or corrupt)")
            header = json.loads(fh.read(header_len))
    except OSError as exc:
        raise SourceError(f"cannot read {path}: {exc.strerror or exc}") from None
    except RecursionError:
        raise SourceError(f"{path} is not a valid safetensors file: its header is nested too deeply") from None
    except (ValueError, UnicodeDecodeError):
        raise SourceError(f"{path} is not a valid safetensors file: its header is not JSON (corrupt)") from None
    if not isinstance(header, dict):
        raise SourceError(f"{path} is not a valid safetensors file: unexpected header")
    end = 0
    for name, info in header.items():
        if name == "__metadata__":
            if not (isinstance(info, dict) and all(isinstance(v, str) for v in info.values())):
                raise SourceError(f"{path} is not a valid safetensors file: __metadata__ must map names to strings")
            continue
        problem = _tensor_entry_problem(info)
        if problem:
            raise SourceError(f"{path} is not a valid safetensors file: tensor {name[:80]!r} {problem}")
        end = max(end, info["data_offsets"][1])
    if 8 + header_len + end > size:
        raise SourceError(f"{path} is truncated: its tensors need {8 + header_len + end} bytes, the file has {size}")
    return header


def _tensor_entry_problem(info: Any) -> str | None:
    """Why a header entry is not ``{"dtype": str, "shape": [int >= 0], "data_offsets": [start, stop]}``."""

    if not isinstance(info, dict):
        return "is not an object"
    offsets, shape, dtype = info.get("data_offsets"), info.get("shape"), info.get("dtype")
    if not (isinstance(offsets, list) and len(offsets) == 2
            and all(isinstance(o, int) and not isinstance(o, bool) and 0 <= o < 2**63 for o in offsets)
            and offsets[0] <= offsets[1]):
        return "has no valid data_offsets"
    if not (isinstance(shape, list) and len(shape) <= 16
            and all(isinstance(d, int) and not isinstance(d, bool) and 0 <= d < 2**48 for d in shape)):
        return "has no valid shape"
    if dtype not in SAFETENSORS_SIZES:
        return f"has an unknown dtype {str(dtype)[:20]!r}"
    count = 1
    for d in shape:
        count *= d
    if count * SAFETENSORS_SIZES[dtype] != offsets[1] - offsets[0]:
        return "has a size that does not match its shape and dtype"
    return None


#: Globals a plain tensor checkpoint needs; anything else is what a refused file "wanted".
TENSOR_GLOBALS = ("torch._utils.", "torch.", "collections.OrderedDict", "_codecs.encode", "numpy.core.multiarray",
                  "numpy.dtype", "builtins.set")


#: A refused pickle is scanned for the globals it wanted (for the message) only up to this size.
MAX_PICKLE_SCAN_BYTES = 256 * 2**20


def pickle_globals(path: Path) -> list[str]:
    """Every ``module.name`` a pickle (or a torch zip checkpoint's data.pkl) would import, found by
    reading its opcodes with :mod:`pickletools`, which executes nothing."""
    import io
    import pickletools
    import zipfile

    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as archive:
                info = next((i for i in archive.infolist() if i.filename.endswith("data.pkl")), None)
                if info is None or info.file_size > MAX_PICKLE_SCAN_BYTES:
                    return []
                stream = io.BytesIO(archive.read(info))
        else:
            stream = io.BytesIO(read_regular(path, limit=MAX_PICKLE_SCAN_BYTES, what="pickle"))
        found: list[str] = []
        strings: list[str] = []
        for opcode, arg, _ in pickletools.genops(stream):
            if opcode.name in ("GLOBAL", "INST"):
                found.append(str(arg).replace(" ", "."))
            elif opcode.name == "STACK_GLOBAL" and len(strings) >= 2:
                found.append(f"{strings[-2]}.{strings[-1]}")
            elif isinstance(arg, str):
                strings.append(arg)
    except Exception:  # noqa: BLE001 - a malformed stream: report what was found so far, never fail here
        return []
    return sorted(set(found))


def load_pickle_state_dict(path: Path) -> dict[str, Any]:
    """A pickle checkpoint's tensors, read with ``weights_only=True`` whatever the environment says."""
    import pickle

    import torch

    if is_lfs_pointer(path):
        raise SourceError(f"{path} is a Git LFS pointer, not the weights: run 'git lfs pull'")
    try:
        with path.open("rb") as fh:  # a file object: torch picks no reader by the name's suffix
            data = torch.load(fh, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        wanted = set(re.findall(r"(?:GLOBAL|global)\s+([\w.]+)", str(exc)))
        wanted |= {g for g in pickle_globals(path) if not g.startswith(TENSOR_GLOBALS)}
        what = f" (it wants {', '.join(sorted(wanted))})" if wanted else ""
        raise SourceError(f"{path.name} holds more than tensors{what}; refused: loading it could run code") from None
    except Exception as exc:  # noqa: BLE001 - reported as a SourceError: truncated zip, not a checkpoint at all, ...
        raise SourceError(f"cannot read {path.name} as a checkpoint: {type(exc).__name__}: "
                          f"{' '.join(str(exc).split())[:200]}") from None
    if isinstance(data, dict) and isinstance(data.get("state_dict"), dict):
        data = data["state_dict"]
    if not isinstance(data, dict) or not all(isinstance(v, torch.Tensor) for v in data.values()):
        raise SourceError(f"{path.name} is not a state dict of tensors")
    return data


#: A sharded checkpoint's ``*.index.json`` maps tensor names to shard files: about 100 KB for Flux's
#: transformer, 1.5 MB for the largest language models.
MAX_INDEX_BYTES = 32 * 2**20


def check_weight_indexes(folder: Path) -> None:
    """Every shard file any ``*.index.json`` in ``folder`` names is a plain file name beside it and a
    complete safetensors file by its content: a loader follows the index, not our glob, and would
    hand a ``.bin`` shard (or a pickle named ``.safetensors``) to ``torch.load``."""
    from inspector.sources.configs import read_json

    for index in sorted(p for p in folder.iterdir() if p.name.lower().endswith(".index.json")):
        data = read_json(index, what="weight index", limit=MAX_INDEX_BYTES)
        weight_map = data.get("weight_map") if isinstance(data, dict) else None
        if not isinstance(weight_map, dict):
            raise SourceError(f"{index} is not a weight index: it has no weight_map object")
        for name in sorted({str(v) for v in weight_map.values()}):
            if not isinstance(name, str) or not SHARD_NAME.match(name) or ".." in name:
                raise SourceError(f"{index} names shard {name[:80]!r}, not a file name beside it: refused")
            shard = folder / name
            kind = checkpoint_format(shard)
            if kind == "pickle":
                raise SourceError(f"{index} names {name}, a pickle-based checkpoint, which can run code when loaded; "
                                  "weights in a folder are read as safetensors only: convert it to .safetensors")
            if not shard.is_file():
                raise SourceError(f"{index} names {name}, which is not a file in {folder}")
            if kind != "safetensors" and not name.lower().endswith(".safetensors"):
                raise SourceError(f"{index} names {name}, which is not a safetensors file (read by its content); "
                                  "weights in a folder are read as safetensors only")
            check_safetensors(shard)


SHARD_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]{0,254}$")


def check_folder_weights(folder: Path, declared: dict[str, Any], dtype_size: int = 4) -> int:
    """Every model component of a diffusers folder has a readable safetensors weight file.

    Returns the bytes the weights will take once loaded with floats of ``dtype_size`` bytes
    (variant files such as ``*.fp16.safetensors`` are counted only when no plain file exists)."""

    total = 0
    for name, entry in declared.items():
        if name.startswith("_") or not isinstance(entry, list) or entry[0] is None:
            continue
        sub = folder / name
        if sub.is_dir():
            check_weight_indexes(sub)
        if not (sub / "config.json").exists():
            continue  # tokenizers, schedulers, feature extractors carry no weights
        weights = sorted(sub.glob("*.safetensors"))
        if not weights:
            pickles = sorted(p.name for p in sub.glob("*.bin")) + sorted(p.name for p in sub.glob("*.pt*"))
            extra = f" (only pickle files: {', '.join(pickles)}; convert them to .safetensors)" if pickles else ""
            raise SourceError(f"{folder}: component {name} has no .safetensors weight file{extra}")
        plain = [p for p in weights if "." not in p.stem]
        for path in weights:
            header = check_safetensors(path)
            if path in plain or not plain:
                total += safetensors_bytes(header, dtype_size)
    return total
