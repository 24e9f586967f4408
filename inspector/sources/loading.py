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
loading anything (:mod:`inspector.sources.precheck`), so bad input fails before torch is imported.
"""
from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Literal

from inspector.errors import SourceError, did_you_mean
from inspector.plugin.preset import Preset, Weights
from inspector.runtime.libraries import library_warnings
from inspector.sources.checkpoints import (
    check_folder_weights,
    check_safetensors,
    load_pickle_state_dict,
    single_file_format,
)
from inspector.sources.configs import read_model_index
from inspector.sources.memory_guard import check_cost, check_memory, module_bytes, safetensors_bytes
from inspector.sources.precheck import DEFAULT_MODEL, hub_snapshot, resolve_source
from inspector.sources.preset_files import materialize_preset, tokenizer_file_kwargs
from inspector.sources.trust import check_folder, pipeline_class
from inspector.sources.vocab import upgrade_tokenizers


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
    #: libraries registered plugins declare, beyond those diffusers loads components from
    libraries: tuple[str, ...] = ()
    #: load even when the weights are predicted not to fit in the device's memory
    force: bool = False
    #: ``(config folder, spec) -> PredictedActivations | None``: the activations one call of the
    #: pipeline those configs describe needs (set by ``inspect`` and ``profile``, which know the
    #: size and batch); the memory guard adds them to the weights. ``None``: weights only.
    activations: Callable[[Path, "SourceSpec"], Any] | None = field(default=None, repr=False, compare=False)
    #: ``(config folder, spec) -> PredictedCost | None``: the work the run will do (set by ``inspect``
    #: and ``profile``, which know what they will call); refused above ``max_seconds`` unless ``force``
    cost: Callable[[Path, "SourceSpec"], Any] | None = field(default=None, repr=False, compare=False)
    max_seconds: float | None = None

    def check_cost(self, folder: Path) -> Any:
        """Refuse a run predicted to take longer than ``max_seconds`` (:mod:`inspector.measure.cost`),
        before any weight is read; the prediction, or None."""
        if self.cost is None or self.force or self.max_seconds is None:
            return None
        predicted = self.cost(folder, self)
        check_cost(predicted, self.max_seconds, self.model or DEFAULT_MODEL)
        return predicted

    def predictor(self, folder: Path) -> Callable[[], Any] | None:
        """The memory guard's activation predictor for the architecture in ``folder``."""
        if self.activations is None:
            return None
        predict = self.activations
        return lambda: predict(folder, self)


@dataclass
class LoadedPipeline:
    pipe: Any
    source: str
    #: ``object``: a pipeline the caller built and handed over (``inspector.inspect(pipe)``);
    #: ``model``: one model instead (``inspector.inspect(pipe.unet)``)
    kind: Literal["preset", "folder", "single_file", "hub_cache", "object", "model"]
    weights: Weights
    declared: dict[str, Any] = field(default_factory=dict)
    preset: str | None = None
    path: str | None = None
    #: the calls to replay, made before the run (a single model's ``inputs=``); None: record them
    recording: Any = None


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
    # the environment variables count only when the libraries are imported after them; a plugin or
    # the caller may have imported them first ("modules that should be kept in float32" on every
    # cast, transformers' "Loading weights" bar on every folder)
    diffusers_logging.set_verbosity_error()
    from transformers.utils import logging as transformers_logging

    transformers_logging.set_verbosity_error()
    transformers_logging.disable_progress_bar()


def torch_dtype(name: str) -> Any:
    import torch

    try:
        return {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}[name]
    except KeyError:
        raise SourceError(f"unknown dtype {name!r}; choose float32, float16 or bfloat16") from None


def dtype_size(name: str) -> int:
    return 4 if name == "float32" else 2


def load(spec: SourceSpec, presets: dict[str, Preset]) -> LoadedPipeline:
    """Resolve ``spec.model`` and load it. Raises :class:`SourceError` with a one-line reason.

    The libraries' own warnings (deprecations, renamed arguments) are captured, not printed."""

    with library_warnings():
        return _load(spec, presets)


def _load(spec: SourceSpec, presets: dict[str, Preset]) -> LoadedPipeline:
    quiet_libraries()
    name = spec.model or DEFAULT_MODEL
    found = resolve_source(name, {n: p.path for n, p in presets.items()})
    if found.kind == "preset":
        preset = presets[name]
        weights = spec.weights or preset.default_weights
        if weights == "pretrained":
            raise SourceError(f"preset {name!r} ships no weights: use --weights meta or --weights random")
        pipe = build_from_configs(preset.path, weights, spec)
        return LoadedPipeline(pipe, name, "preset", weights, read_model_index(preset.path), preset=name,
                              path=str(preset.path))

    if found.kind == "folder":
        return _load_folder(found.local(), read_model_index(found.local()), spec, kind="folder", source=name)
    if found.kind == "single_file":
        return _load_single_file(found.local(), spec, presets, source=name)
    return _load_repo_id(name, spec)


def _load_folder(path: Path, declared: dict[str, Any], spec: SourceSpec, *, kind: str, source: str) -> LoadedPipeline:
    weights = spec.weights or "pretrained"
    check_folder(path, declared, spec.libraries)  # for every --weights mode, before any loader runs
    if weights != "pretrained":
        pipe = build_from_configs(path, weights, spec)
    else:
        needed = check_folder_weights(path, declared, dtype_size(spec.dtype))
        check_memory(needed, spec.device, force=spec.force, what="the pretrained weights",
                     predict=spec.predictor(path))
        spec.check_cost(path)  # after the memory check: weights that cannot fit are refused without a build
        pipe = _from_pretrained(path, spec)
    return LoadedPipeline(pipe, source, kind, weights, declared, path=str(path))  # type: ignore[arg-type]


def _from_pretrained(path: Path, spec: SourceSpec) -> Any:
    from diffusers import DiffusionPipeline

    try:
        with library_warnings():
            pipe = DiffusionPipeline.from_pretrained(
                str(path), torch_dtype=torch_dtype(spec.dtype), use_safetensors=True, local_files_only=True,
                trust_remote_code=False,
            )
    except SourceError:
        raise
    except Exception as exc:  # noqa: BLE001 - diffusers raises many types for a broken folder
        raise SourceError(f"cannot load the pipeline in {path}: {_first_line(exc)}{_accelerate_hint(exc)}") from None
    return pipe.to(spec.device)


def _accelerate_hint(exc: BaseException) -> str:
    """Models that keep some modules in float32 (Wan's transformer) load only with
    ``low_cpu_mem_usage``, which diffusers turns on only when ``accelerate`` is installed."""
    import importlib.util

    if "low_cpu_mem_usage" in str(exc) and importlib.util.find_spec("accelerate") is None:
        return " (this model needs the accelerate package: pip install accelerate)"
    return ""


def _load_single_file(path: Path, spec: SourceSpec, presets: dict[str, Preset], *, source: str) -> LoadedPipeline:
    kind = single_file_format(path, allow_pickle=spec.allow_pickle)  # by content, not by name
    if not spec.arch:
        raise SourceError(f"{path.name} is a single-file checkpoint: name its architecture with --arch "
                          f"({', '.join(sorted(presets))})")
    if spec.arch not in presets:
        raise SourceError(f"unknown --arch {spec.arch!r}{did_you_mean(spec.arch, presets)}; choose one of "
                          f"{', '.join(sorted(presets))}")
    if kind == "safetensors":
        check_memory(safetensors_bytes(check_safetensors(path), dtype_size(spec.dtype)), spec.device,
                     force=spec.force, what=f"the weights in {path.name}",
                     predict=spec.predictor(presets[spec.arch].path))
    spec.check_cost(presets[spec.arch].path)
    preset = presets[spec.arch]
    declared = read_model_index(preset.path)
    import tempfile

    import diffusers

    pipeline_cls = getattr(diffusers, declared["_class_name"])
    with tempfile.TemporaryDirectory(prefix="ldm-inspector-") as tmp:
        # diffusers reads the configs and tokenizer files itself: give it a complete copy
        configs = materialize_preset(preset.path, Path(tmp) / "configs")
        weights_file = path  # ``source`` stays the user's string: it goes into the JSON
        if kind == "safetensors" and path.suffix != ".safetensors":
            # diffusers picks its reader by the name's suffix (case and all): a safetensors file named
            # .SAFETENSORS or .ckpt would go to torch.load; give it the name its content has
            weights_file = Path(tmp) / "checkpoint.safetensors"
            weights_file.symlink_to(path.resolve())
        if kind == "pickle":  # tensors only, then the same safetensors path as everyone else
            from safetensors.torch import save_file

            converted = Path(tmp) / (path.stem + ".safetensors")
            save_file({k: v.contiguous() for k, v in load_pickle_state_dict(path).items()}, str(converted))
            weights_file = converted

        try:
            with library_warnings():
                pipe = pipeline_cls.from_single_file(
                    str(weights_file), config=str(configs), local_files_only=True,
                    torch_dtype=torch_dtype(spec.dtype),
                )
        except Exception as exc:  # noqa: BLE001 - reported as a SourceError: diffusers raises many types
            raise SourceError(f"cannot load {path.name} as {spec.arch}: {_first_line(exc)}") from None

    upgrade_tokenizers(pipe)  # the preset's configs came with its stand-in tokenizer files
    return LoadedPipeline(pipe.to(spec.device), source, "single_file", "pretrained", declared,
                          preset=spec.arch, path=str(path))


def _load_repo_id(repo_id: str, spec: SourceSpec) -> LoadedPipeline:
    """The cached snapshot ``refs/main`` names, checked before huggingface_hub reads the ref
    (:func:`~inspector.sources.precheck.hub_snapshot`); offline, that folder is used directly."""
    from huggingface_hub import snapshot_download

    cached = hub_snapshot(repo_id)
    hint = "" if spec.allow_download else " (offline: pass --allow-download to fetch it)"
    if spec.allow_download:
        try:
            folder = Path(snapshot_download(repo_id, local_files_only=False))
        except Exception:  # noqa: BLE001 - reported as a SourceError: the download failed
            raise SourceError(f"{repo_id!r} is not in the local Hugging Face cache{hint}") from None
        cached = hub_snapshot(repo_id)  # the ref it wrote, checked as any other
        if cached is None or folder.resolve() != cached.resolve():
            raise SourceError(f"{repo_id!r}: the downloaded snapshot {folder} is not the one refs/main names")
    if cached is None:
        raise SourceError(f"{repo_id!r} is not in the local Hugging Face cache{hint}")
    folder = cached
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
    import torch

    declared = read_model_index(folder)
    classes = check_folder(folder, declared, spec.libraries)  # only accepted libraries are imported
    dtype = torch_dtype(spec.dtype)
    components: dict[str, Any] = {}
    for name, cls in classes.items():
        if cls is None:
            components[name] = None
            continue
        components[name] = _build_component(cls, folder / name, dtype, name)
    if weights == "random":  # every model exists on meta: predict, then materialize

        models = [c for c in components.values() if isinstance(c, torch.nn.Module)]
        check_memory(module_bytes(models, dtype), spec.device, force=spec.force, what="random weights",
                     predict=spec.predictor(folder))
        spec.check_cost(folder)
        for model in models:
            materialize(model, spec.seed, dtype)
    pipeline_cls = pipeline_class(str(folder), declared)
    extra = {k: v for k, v in declared.items() if not k.startswith("_") and not isinstance(v, list)}
    accepted = set(pipeline_cls._get_signature_keys(pipeline_cls)[0]) | set(
        pipeline_cls._get_signature_keys(pipeline_cls)[1])
    kwargs = {k: v for k, v in {**components, **extra}.items() if k in accepted}
    try:
        pipe = pipeline_cls(**kwargs)
    except (TypeError, ValueError, AttributeError, KeyError) as exc:  # components that do not fit together
        raise SourceError(f"{folder}: cannot assemble {pipeline_cls.__name__}: {_first_line(exc)}") from None
    if weights == "random":
        pipe.to(spec.device)

    upgrade_tokenizers(pipe)
    return pipe


def _build_component(cls: Any, folder: Path, dtype: Any, name: str) -> Any:
    """One component from its config; models on ``meta`` (materialized later, after the memory check).
    Whatever a malformed config makes the library raise becomes one line naming the component."""

    try:
        with library_warnings():
            return _build_from_config(cls, folder, dtype)
    except SourceError:
        raise
    except (MemoryError, RecursionError) as exc:
        raise SourceError(f"{folder}: component {name}: its config is too large to build "
                          f"({type(exc).__name__})") from None
    except Exception as exc:  # noqa: BLE001 - the config is data; the library's complaint is the message
        raise SourceError(f"{folder}: component {name} cannot be built from its config: {_first_line(exc)}") from None


def _build_from_config(cls: Any, folder: Path, dtype: Any) -> Any:
    import torch

    if hasattr(cls, "from_config") and hasattr(cls, "load_config"):  # diffusers models and schedulers
        config = cls.load_config(str(folder))
        if not issubclass(cls, torch.nn.Module):
            return cls.from_config(config)
        factory = lambda: cls.from_config(config)  # noqa: E731
    elif issubclass(cls, torch.nn.Module):  # transformers models
        config = cls.config_class.from_pretrained(str(folder), local_files_only=True, trust_remote_code=False)
        factory = lambda: cls(config)  # noqa: E731
    else:  # tokenizers, feature extractors; a shipped preset's tokenizer reads the shared vocabulary

        return cls.from_pretrained(str(folder), local_files_only=True, trust_remote_code=False,
                                   **tokenizer_file_kwargs(cls, folder))

    with torch.device("meta"), _no_init():
        model = factory()
    model.to(dtype)
    return model.eval()


@contextlib.contextmanager
def _no_init() -> Iterator[None]:
    """``torch.nn.init``'s in-place initializers do nothing while a model is built on ``meta``:
    there are no values to fill (random weights are drawn afterwards, by :func:`materialize`), and
    on ``meta`` each call still runs torch's Python decomposition (a tenth of a second for a UNet)."""
    from torch.nn import init

    names = [n for n in dir(init) if n.endswith("_") and not n.startswith("_") and callable(getattr(init, n))]
    saved = {n: getattr(init, n) for n in names}

    def nothing(tensor: Any, *args: Any, **kwargs: Any) -> Any:
        return tensor

    try:
        for n in names:
            setattr(init, n, nothing)
        yield
    finally:
        for n, fn in saved.items():
            setattr(init, n, fn)


def materialize(model: Any, seed: int, dtype: Any) -> None:
    """Replace meta parameters and buffers with seeded random values on the CPU.

    Matrices and kernels get N(0, 1/fan_in), 1-D weights (norms) ones, biases
    zeros: a stable scale for forward passes, and far faster than each layer's
    own initializer on full-size models. Buffers left on ``meta`` (CLIP's
    non-persistent ``position_ids``) are rebuilt.
    """
    import torch

    generator = torch.Generator().manual_seed(seed)
    for _module_name, module in model.named_modules():
        for pname, param in list(module.named_parameters(recurse=False)):
            data = torch.empty(param.shape, dtype=torch.float32)
            if data.numel() == 0:  # a vocabulary or width of 0: nothing to draw
                pass
            elif param.dim() >= 2:
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
