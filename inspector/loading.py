"""Turn a model source into a loaded diffusers pipeline.

Sources, resolved in this order:

* a preset name (``tiny-sd``, ``tiny-sdxl``, ``tiny-sd3``, ``tiny-flux``, ``sd15``,
  ``sd21``, ``sdxl``, ``sd3``, ``flux`` and any a plugin registers): a shipped
  diffusers folder of configs, built on ``meta`` or with seeded random weights;
* a local diffusers folder (has ``model_index.json``);
* a single ``.safetensors`` checkpoint, described by ``--arch PRESET``;
* a Hugging Face repo id, resolved from the local cache.

Everything goes through diffusers' own loaders, safetensors only, and offline
unless ``allow_download`` is set. The CLI runs the same resolution first without
loading anything (:mod:`inspector.precheck`), so bad input fails before torch is imported.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from .errors import SourceError
from .precheck import DEFAULT_MODEL, PICKLE_SUFFIXES, did_you_mean, looks_like_path, looks_like_repo_id

Weights = Literal["meta", "random", "pretrained"]


@dataclass(frozen=True)
class Preset:
    """A named architecture: a diffusers folder holding configs and tokenizer files, no weights."""

    name: str
    path: Path
    description: str = ""
    default_weights: Weights = "meta"


@dataclass
class SourceSpec:
    model: str | None = None
    weights: Weights | None = None
    arch: str | None = None
    dtype: str = "float32"
    device: str = "cpu"
    seed: int = 0
    allow_download: bool = False
    allow_pickle: bool = False


@dataclass
class LoadedPipeline:
    pipe: Any
    source: str
    kind: Literal["preset", "folder", "single_file", "hub_cache"]
    weights: Weights
    declared: dict[str, Any] = field(default_factory=dict)
    preset: str | None = None
    path: str | None = None


def enforce_offline(allow_download: bool) -> None:
    """Give huggingface_hub ``HF_HUB_OFFLINE`` semantics unless the user allowed downloads.

    Must run before huggingface_hub is imported to take full effect; every loader
    call below also passes ``local_files_only`` so nothing is fetched either way. Imports nothing:
    the CLI calls it before checking the input, and :func:`load` quiets the libraries it imports.
    """
    if not allow_download:
        os.environ["HF_HUB_OFFLINE"] = "1"
        os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")


def quiet_libraries() -> None:
    """Silence import-time chatter from transformers/diffusers (progress bars, backend notices)."""
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("DIFFUSERS_VERBOSITY", "error")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    import logging

    logging.getLogger("transformers").setLevel(logging.ERROR)
    from diffusers.utils import logging as diffusers_logging

    diffusers_logging.disable_progress_bar()


def torch_dtype(name: str) -> Any:
    import torch

    try:
        return {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}[name]
    except KeyError:
        raise SourceError(f"unknown dtype {name!r}; choose float32, float16 or bfloat16") from None


def read_model_index(folder: Path) -> dict[str, Any]:
    index = folder / "model_index.json"
    try:
        return json.loads(index.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SourceError(f"{folder} has no model_index.json: not a diffusers pipeline folder") from None
    except (OSError, ValueError) as exc:
        raise SourceError(f"cannot read {index}: {exc}") from None


def load(spec: SourceSpec, presets: dict[str, Preset]) -> LoadedPipeline:
    """Resolve ``spec.model`` and load it. Raises :class:`SourceError` with a one-line reason."""
    quiet_libraries()
    name = spec.model or DEFAULT_MODEL
    if name in presets:
        preset = presets[name]
        weights = spec.weights or preset.default_weights
        if weights == "pretrained":
            raise SourceError(f"preset {name!r} ships no weights: use --weights meta or --weights random")
        pipe = build_from_configs(preset.path, weights, spec)
        return LoadedPipeline(pipe, name, "preset", weights, read_model_index(preset.path), preset=name,
                              path=str(preset.path))

    path = Path(name).expanduser()
    if path.is_dir():
        declared = read_model_index(path)
        return _load_folder(path, declared, spec, kind="folder", source=name)
    if path.is_file():
        return _load_single_file(path, spec, presets, source=name)
    if looks_like_path(name):
        raise SourceError(f"no such file or directory: {name}")
    if looks_like_repo_id(name):
        return _load_repo_id(name, spec)
    known = ", ".join(sorted(presets))
    raise SourceError(f"unknown model {name!r}{did_you_mean(name, presets)}: not a preset ({known}), a path, "
                      "or a repo id")


def _load_folder(path: Path, declared: dict[str, Any], spec: SourceSpec, *, kind: str, source: str) -> LoadedPipeline:
    weights = spec.weights or "pretrained"
    if weights != "pretrained":
        pipe = build_from_configs(path, weights, spec)
    else:
        from .checkpoints import check_folder_weights

        check_folder_weights(path, declared)
        pipe = _from_pretrained(path, spec)
    return LoadedPipeline(pipe, source, kind, weights, declared, path=str(path))  # type: ignore[arg-type]


def _from_pretrained(path: Path, spec: SourceSpec) -> Any:
    from diffusers import DiffusionPipeline

    try:
        pipe = DiffusionPipeline.from_pretrained(
            str(path), torch_dtype=torch_dtype(spec.dtype), use_safetensors=True, local_files_only=True,
            trust_remote_code=False,
        )
    except SourceError:
        raise
    except Exception as exc:  # diffusers raises many types for a broken folder
        raise SourceError(f"cannot load the pipeline in {path}: {_first_line(exc)}") from None
    return pipe.to(spec.device)


def _load_single_file(path: Path, spec: SourceSpec, presets: dict[str, Preset], *, source: str) -> LoadedPipeline:
    from .checkpoints import PICKLE_HINT, check_safetensors, load_pickle_state_dict

    suffix = path.suffix.lower()
    if suffix in PICKLE_SUFFIXES:
        if not spec.allow_pickle:
            raise SourceError(f"{path.name} is a pickle-based checkpoint, which can run code when loaded; "
                              + PICKLE_HINT.replace("IN", path.name))
    elif suffix != ".safetensors":
        raise SourceError(f"{path.name}: a single-file checkpoint must be .safetensors (or, with --allow-pickle, "
                          ".ckpt/.bin/.pt)")
    if not spec.arch:
        raise SourceError(f"{path.name} is a single-file checkpoint: name its architecture with --arch "
                          f"({', '.join(sorted(presets))})")
    if spec.arch not in presets:
        raise SourceError(f"unknown --arch {spec.arch!r}{did_you_mean(spec.arch, presets)}; choose one of "
                          f"{', '.join(sorted(presets))}")
    if suffix == ".safetensors":
        check_safetensors(path)
    preset = presets[spec.arch]
    declared = read_model_index(preset.path)
    import tempfile

    import diffusers

    pipeline_cls = getattr(diffusers, declared["_class_name"])
    with tempfile.TemporaryDirectory(prefix="ldm-inspector-") as tmp:
        weights_file = path  # ``source`` stays the user's string: it goes into the JSON
        if suffix in PICKLE_SUFFIXES:  # tensors only, then the same safetensors path as everyone else
            from safetensors.torch import save_file

            converted = Path(tmp) / (path.stem + ".safetensors")
            save_file({k: v.contiguous() for k, v in load_pickle_state_dict(path).items()}, str(converted))
            weights_file = converted
        try:
            pipe = pipeline_cls.from_single_file(
                str(weights_file), config=str(preset.path), local_files_only=True, torch_dtype=torch_dtype(spec.dtype),
            )
        except Exception as exc:
            raise SourceError(f"cannot load {path.name} as {spec.arch}: {_first_line(exc)}") from None
    from .vocab import upgrade_tokenizers

    upgrade_tokenizers(pipe)  # the preset's configs came with its stand-in tokenizer files
    return LoadedPipeline(pipe.to(spec.device), source, "single_file", "pretrained", declared,
                          preset=spec.arch, path=str(path))


def _load_repo_id(repo_id: str, spec: SourceSpec) -> LoadedPipeline:
    from huggingface_hub import snapshot_download

    try:
        folder = Path(snapshot_download(repo_id, local_files_only=not spec.allow_download))
    except Exception:
        hint = "" if spec.allow_download else " (offline: pass --allow-download to fetch it)"
        raise SourceError(f"{repo_id!r} is not in the local Hugging Face cache{hint}") from None
    declared = read_model_index(folder)
    return _load_folder(folder, declared, spec, kind="hub_cache", source=repo_id)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


# --- building from configs --------------------------------------------------

def build_from_configs(folder: Path, weights: Weights, spec: SourceSpec) -> Any:
    """Build the pipeline a diffusers folder describes without reading any weight file.

    ``weights="meta"``: every model lives on the ``meta`` device (shapes, no memory).
    ``weights="random"``: parameters drawn from a generator seeded with ``spec.seed``.
    """
    import importlib

    import diffusers
    import torch

    declared = read_model_index(folder)
    dtype = torch_dtype(spec.dtype)
    components: dict[str, Any] = {}
    for name, entry in declared.items():
        if name.startswith("_") or not isinstance(entry, list):
            continue
        library, class_name = entry
        if library is None or class_name is None:
            components[name] = None
            continue
        module = diffusers if library in ("diffusers", "stable_diffusion") else importlib.import_module(library)
        cls = getattr(module, class_name, None)
        if cls is None:
            raise SourceError(f"{folder}: component {name} names unknown class {library}.{class_name}")
        sub = folder / name
        components[name] = _build_component(cls, sub, weights, dtype, spec)
    pipeline_cls = getattr(diffusers, declared["_class_name"], None)
    if pipeline_cls is None:
        raise SourceError(f"{folder}: unknown pipeline class {declared['_class_name']!r}")
    extra = {k: v for k, v in declared.items() if not k.startswith("_") and not isinstance(v, list)}
    accepted = set(pipeline_cls._get_signature_keys(pipeline_cls)[0]) | set(
        pipeline_cls._get_signature_keys(pipeline_cls)[1])
    kwargs = {k: v for k, v in {**components, **extra}.items() if k in accepted}
    pipe = pipeline_cls(**kwargs)
    if weights == "random":
        pipe.to(spec.device)
    from .vocab import upgrade_tokenizers

    upgrade_tokenizers(pipe)
    return pipe


def _build_component(cls: Any, folder: Path, weights: Weights, dtype: Any, spec: SourceSpec) -> Any:
    import torch

    if hasattr(cls, "from_config") and hasattr(cls, "load_config"):  # diffusers models and schedulers
        config = cls.load_config(str(folder))
        if not issubclass(cls, torch.nn.Module):
            return cls.from_config(config)
        factory = lambda: cls.from_config(config)  # noqa: E731
    elif issubclass(cls, torch.nn.Module):  # transformers models
        config = cls.config_class.from_pretrained(str(folder), local_files_only=True)
        factory = lambda: cls(config)  # noqa: E731
    else:  # tokenizers, feature extractors
        return cls.from_pretrained(str(folder), local_files_only=True)

    with torch.device("meta"):
        model = factory()
    model.to(dtype)
    if weights == "random":
        materialize(model, spec.seed, dtype)
    return model.eval()


def materialize(model: Any, seed: int, dtype: Any) -> None:
    """Replace meta parameters and buffers with seeded random values on the CPU.

    Matrices and kernels get N(0, 1/fan_in), 1-D weights (norms) ones, biases
    zeros: a stable scale for forward passes, and far faster than each layer's
    own initializer on full-size models. Buffers left on ``meta`` (CLIP's
    non-persistent ``position_ids``) are rebuilt.
    """
    import torch

    generator = torch.Generator().manual_seed(seed)
    for module_name, module in model.named_modules():
        for pname, param in list(module.named_parameters(recurse=False)):
            data = torch.empty(param.shape, dtype=torch.float32)
            if param.dim() >= 2:
                fan_in = param[0].numel()
                data.normal_(0.0, fan_in ** -0.5, generator=generator)
            elif pname.endswith("bias"):
                data.zero_()
            else:
                data.fill_(1.0)
            module._parameters[pname] = torch.nn.Parameter(data.to(dtype), requires_grad=param.requires_grad)
        for bname, buf in list(module.named_buffers(recurse=False)):
            if buf is not None and buf.is_meta:
                module._buffers[bname] = _rebuild_buffer(module, bname, buf)


def _rebuild_buffer(module: Any, name: str, buf: Any) -> Any:
    import torch

    if name == "position_ids":
        return torch.arange(buf.shape[-1], dtype=buf.dtype).expand(buf.shape).contiguous()
    return torch.zeros(buf.shape, dtype=buf.dtype)
