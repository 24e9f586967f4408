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
from inspector.sources.memory_guard import SAFETENSORS_SIZES, safetensors_bytes

LFS_POINTER = b"version https://git-lfs.github.com/spec/"
PICKLE_HINT = ("convert it to .safetensors (python -c \"import torch, safetensors.torch as s; "
               "s.save_file(torch.load('IN', weights_only=True), 'OUT.safetensors')\") or pass --allow-pickle")


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


def pickle_globals(path: Path) -> list[str]:
    """Every ``module.name`` a pickle (or a torch zip checkpoint's data.pkl) would import, found by
    reading its opcodes with :mod:`pickletools`, which executes nothing."""
    import io
    import pickletools
    import zipfile

    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as archive:
                name = next((n for n in archive.namelist() if n.endswith("data.pkl")), None)
                if name is None:
                    return []
                stream = io.BytesIO(archive.read(name))
        else:
            stream = io.BytesIO(path.read_bytes())
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
        data = torch.load(str(path), map_location="cpu", weights_only=True)
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


def check_folder_weights(folder: Path, declared: dict[str, Any], dtype_size: int = 4) -> int:
    """Every model component of a diffusers folder has a readable safetensors weight file.

    Returns the bytes the weights will take once loaded with floats of ``dtype_size`` bytes
    (variant files such as ``*.fp16.safetensors`` are counted only when no plain file exists)."""

    total = 0
    for name, entry in declared.items():
        if name.startswith("_") or not isinstance(entry, list) or entry[0] is None:
            continue
        sub = folder / name
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
