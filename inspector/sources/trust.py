"""Data never names code: what a model folder may make us import, checked before any loader runs.

A diffusers folder names its components' libraries and classes in ``model_index.json``, and
importing a module runs it. So library names are resolved only against the libraries diffusers
itself loads components from (``diffusers``, ``transformers``, ``onnxruntime.training``, and
diffusers' own pipeline sub-packages such as ``stable_diffusion``) plus those a registered plugin
declares (``LDM_INSPECTOR_LIBRARIES = ("my_library",)`` in the plugin module); the class must be
a component class those libraries load (a ``ModelMixin``, ``SchedulerMixin``, ``PreTrainedModel``,
tokenizer, ...). A transformers config that carries ``auto_map`` (custom modelling code in the
folder) is refused, never asked about. Files other than regular files and folders (FIFOs, devices,
sockets) in a model folder are refused before any loader can open them and block.

Everything here raises :class:`~inspector.errors.SourceError`: one line, exit 2.
"""
from __future__ import annotations

import importlib
import os
import re
import stat
from pathlib import Path
from typing import Any, Iterable

from inspector.errors import SourceError
from inspector.files import special_kind
from inspector.sources.configs import read_json
from inspector.sources.limits import check_config_values
from inspector.sources.preset_files import missing_vocabulary

#: The libraries diffusers' own loader accepts (``pipeline_loading_utils.LOADABLE_CLASSES``).
DIFFUSERS_LIBRARIES = ("diffusers", "transformers", "onnxruntime.training")
#: Component names become folder names: no path separators, no ``..``.
COMPONENT_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
CLASS_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")
MAX_COMPONENTS = 64
#: Files in a component folder other than weights are read whole by the libraries (tokenizer.json,
#: merges.txt, vocab.json, spiece.model). Real ones: CLIP's merges.txt 0.5 MB, T5's spiece.model
#: 0.8 MB, Qwen2's tokenizer.json 7 MB, Gemma 3's 33 MB.
MAX_SOURCE_FILE_BYTES = 256 * 2**20
#: weight files (read by the checkpoint checks and the loaders, tensor by tensor)
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".ckpt", ".pt", ".pth", ".pkl", ".onnx", ".onnx_data", ".msgpack", ".h5",
                   ".gguf", ".npz", ".npy", ".pb", ".tflite")
MAX_FILES_PER_FOLDER = 10_000


def accepted_libraries(extra: Iterable[str] = ()) -> tuple[str, ...]:
    return tuple(dict.fromkeys([*DIFFUSERS_LIBRARIES, *extra]))


def _loadable_bases(library: str) -> tuple[type, ...]:
    """The component base classes diffusers loads from ``library`` (empty: a plugin's library)."""
    from diffusers.pipelines.pipeline_loading_utils import LOADABLE_CLASSES

    libraries = ("diffusers", "transformers") if library == "diffusers" else (library,)
    bases: list[type] = []
    for lib in libraries:
        names = LOADABLE_CLASSES.get(lib)
        if not names:
            continue
        module = importlib.import_module(lib)
        bases += [b for b in (getattr(module, n, None) for n in names) if isinstance(b, type)]
    return tuple(bases)


def _pipeline_subpackage(library: str) -> Any:
    """diffusers' own pipeline sub-package named ``library`` (``stable_diffusion``), or None."""
    if not CLASS_NAME.match(library):
        return None
    from diffusers import pipelines

    try:
        module = getattr(pipelines, library, None)
    except Exception:  # noqa: BLE001 - a lazy sub-package that fails to import is not one we load from
        return None
    name = getattr(module, "__name__", "")
    return module if isinstance(name, str) and name.startswith("diffusers.pipelines.") else None


def resolve_class(where: str, component: str, library: Any, class_name: Any, extra: Iterable[str] = ()) -> type:
    """The class ``[library, class_name]`` names, imported only from an accepted library."""
    if not isinstance(library, str) or not isinstance(class_name, str):
        raise SourceError(f"{where}: component {component} must name [library, class] as two strings, "
                          f"got {_short([library, class_name])}")
    accepted = accepted_libraries(extra)
    if library in accepted:
        try:
            module = importlib.import_module(library)
        except ImportError:
            raise SourceError(f"{where}: component {component} needs {library}, which is not installed") from None
        bases = _loadable_bases(library)
    else:
        module = _pipeline_subpackage(library)
        if module is None:
            raise SourceError(f"{where}: component {component} names module {_short(library)}, which is not a "
                              f"library diffusers loads components from ({', '.join(accepted)}) nor one a "
                              "plugin declares; refused: importing it would run code from outside those libraries")
        bases = _loadable_bases("diffusers")
    if not CLASS_NAME.match(class_name):
        raise SourceError(f"{where}: component {component} names class {_short(class_name)}, not a class name")
    try:
        cls = getattr(module, class_name, None)
    except Exception:  # noqa: BLE001 - a lazy attribute that fails to import is no class we load
        cls = None
    if cls is None and module.__name__.startswith("diffusers.pipelines."):
        import diffusers

        cls = getattr(diffusers, class_name, None)
    if not isinstance(cls, type):
        what = "unknown" if cls is None else f"not a class ({type(cls).__name__})"
        raise SourceError(f"{where}: component {component} names {library}.{class_name}, which is {what}")
    if bases and not issubclass(cls, bases):
        raise SourceError(f"{where}: component {component} names {library}.{class_name}, which is not a "
                          "component class diffusers loads (model, scheduler, tokenizer, feature extractor)")
    return cls


def pipeline_class(where: str, declared: dict[str, Any]) -> type[Any]:
    """The diffusers pipeline class ``_class_name`` names (a custom pipeline's ``[module, class]`` is refused)."""
    import diffusers

    name = declared.get("_class_name")
    if not isinstance(name, str) or not CLASS_NAME.match(name):
        raise SourceError(f"{where}: _class_name must name a diffusers pipeline class, got {_short(name)} "
                          "(custom pipeline code is never run)")
    try:
        cls = getattr(diffusers, name, None)
    except Exception:  # noqa: BLE001 - a lazy attribute that fails to import is no pipeline class
        cls = None
    if not (isinstance(cls, type) and issubclass(cls, diffusers.DiffusionPipeline)):
        raise SourceError(f"{where}: unknown pipeline class {name!r} (not a diffusers pipeline)")
    if cls is diffusers.DiffusionPipeline:
        raise SourceError(f"{where}: _class_name {name!r} is diffusers' base class, not a pipeline: name the "
                          "pipeline class (StableDiffusionPipeline, FluxPipeline, ...)")
    return cls


def check_model_index(where: str, declared: Any, extra: Iterable[str] = ()) -> dict[str, type | None]:
    """Validate the shape of ``model_index.json`` and resolve every component's class.

    Returns component name -> class (``None`` for an absent optional component)."""
    if not isinstance(declared, dict):
        raise SourceError(f"{where}: model_index.json must hold a JSON object, got {type(declared).__name__}")
    pipeline_class(where, declared)
    components = {k: v for k, v in declared.items() if not (isinstance(k, str) and k.startswith("_"))}
    if len(components) > MAX_COMPONENTS:
        raise SourceError(f"{where}: model_index.json names {len(components)} entries; a pipeline has at most "
                          f"{MAX_COMPONENTS}")
    resolved: dict[str, type | None] = {}
    for name, entry in components.items():
        if not COMPONENT_NAME.match(name):
            raise SourceError(f"{where}: component name {_short(name)} is not a plain name (no paths)")
        if entry is None or isinstance(entry, (bool, int, float, str)):
            continue  # a pipeline setting such as requires_safety_checker
        if not isinstance(entry, list) or len(entry) != 2:
            raise SourceError(f"{where}: component {name} must be [library, class], got {_short(entry)}")
        library, class_name = entry
        if library is None and class_name is None:
            resolved[name] = None
            continue
        resolved[name] = resolve_class(where, name, library, class_name, extra)
    return resolved


def check_folder(folder: Path, declared: Any, extra: Iterable[str] = ()) -> dict[str, type | None]:
    """Everything about a diffusers folder that must hold before any loader touches it."""
    where = str(folder)
    resolved = check_model_index(where, declared, extra)
    _check_entries(folder)
    for name in resolved:
        sub = folder / name
        if sub.is_dir():
            _check_entries(sub, limit=MAX_SOURCE_FILE_BYTES)
            _check_configs(sub, name)
            _check_vocabulary(sub, name, resolved[name])
    return resolved


def _check_entries(folder: Path, limit: int | None = None) -> None:
    """No FIFO, device or socket where a loader might open a file; with ``limit``, no file but a weight
    file larger than that (the libraries read tokenizer and config files whole)."""
    try:
        with os.scandir(folder) as entries:
            for count, entry in enumerate(entries):
                if count >= MAX_FILES_PER_FOLDER:
                    raise SourceError(f"{folder}: more than {MAX_FILES_PER_FOLDER} entries; not a model folder")
                try:
                    mode = os.stat(entry.path).st_mode
                except FileNotFoundError:
                    continue  # a dangling symlink: the loader reports a missing file if it needs it
                if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
                    raise SourceError(f"{entry.path} is {special_kind(mode)}, not a file: refused")
                if limit is not None and stat.S_ISREG(mode) and not entry.name.lower().endswith(WEIGHT_SUFFIXES):
                    size = os.stat(entry.path).st_size
                    if size > limit:
                        raise SourceError(f"{entry.path} is {size:,} bytes, more than the {limit:,} a tokenizer or "
                                          "config file may have: refused before any library reads it whole")
    except OSError as exc:
        raise SourceError(f"cannot read {folder}: {exc.strerror or exc}") from None


def _check_configs(folder: Path, component: str) -> None:
    """A config that asks for custom code (``auto_map``) is refused; it is never asked about or run."""
    for path in sorted(folder.glob("*.json")):
        if path.name.endswith(".index.json") or not path.is_file():
            continue
        data = read_json(path, what="config")
        check_config_values(path, data)
        if isinstance(data, dict) and "auto_map" in data:
            raise SourceError(f"{path}: component {component} asks for custom code (auto_map); refused: "
                              "code from a model folder is never run")


def _check_vocabulary(folder: Path, component: str, cls: type | None) -> None:
    """A tokenizer folder without its vocabulary files is refused: transformers would quietly build a
    tokenizer that knows no token. Shipped presets share theirs (:mod:`inspector.sources.preset_files`)."""

    missing = missing_vocabulary(cls, folder)
    if missing:
        raise SourceError(f"{folder}: component {component} ({getattr(cls, '__name__', '?')}) has no "
                          f"{' or '.join(missing)} (and no tokenizer.json): its vocabulary is missing")


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."
