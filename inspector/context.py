"""What a plugin is handed: the component to inspect and the run around it."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .capture import Capture, capture, parameter_stats, tensor_infos
from .errors import OptionError
from .results import ComponentResult, ParameterStats


@dataclass
class Component:
    """One entry of ``pipe.components``. ``obj`` is ``None`` when the component is absent."""

    name: str
    obj: Any
    library: str | None = None
    declared_class: str | None = None

    @property
    def present(self) -> bool:
        return self.obj is not None

    @property
    def class_name(self) -> str:
        if self.obj is None:
            return self.declared_class or "None"
        return type(self.obj).__name__

    @property
    def is_module(self) -> bool:
        import torch

        return isinstance(self.obj, torch.nn.Module)


@dataclass
class InspectOptions:
    height: int | None = None
    width: int | None = None
    batch_size: int = 1
    prompt: str = "a photo of an astronaut riding a horse on mars"
    negative_prompt: str = ""
    guidance_scale: float = 7.5
    steps: int = 50
    seed: int = 0
    #: ``--fits``: a device name or memory size to judge the predicted peak against
    fits: str | None = None


@dataclass
class InspectContext:
    """The run a plugin sees. Shapes follow the pipeline: latents at ``height/width``
    divided by the VAE's scale factor, and the batch doubled under classifier-free guidance."""

    pipe: Any
    options: InspectOptions
    device: Any
    dtype: Any
    height: int = 0
    width: int = 0
    weights: str | None = None
    shared: dict[str, Any] = field(default_factory=dict)

    @property
    def vae_scale_factor(self) -> int:
        return int(getattr(self.pipe, "vae_scale_factor", 8) or 8)

    @property
    def cfg(self) -> bool:
        """Whether the pipeline runs classifier-free guidance (two denoiser batches per image).
        Flux is guidance-distilled: the scale goes in as an input, the batch is not doubled."""
        return self.options.guidance_scale > 1.0 and not self.is_flux

    @property
    def cfg_batch(self) -> int:
        return self.options.batch_size * (2 if self.cfg else 1)

    @property
    def latent_size(self) -> tuple[int, int]:
        return self.height // self.vae_scale_factor, self.width // self.vae_scale_factor

    def denoise_calls(self) -> int:
        """How many denoising iterations (UNet calls) one pipeline run makes: the length of the
        scheduler's timesteps for ``--steps``, which is not always ``--steps`` (PNDM adds one)."""
        if "denoise_calls" not in self.shared:
            scheduler = getattr(self.pipe, "scheduler", None)
            count = self.options.steps
            if scheduler is not None:
                count = len(planned_scheduler(scheduler, self.options.steps, self.image_seq_len).timesteps)
            self.shared["denoise_calls"] = count
        return self.shared["denoise_calls"]

    @property
    def image_seq_len(self) -> int:
        """Image tokens a packing transformer sees (Flux: 2x2 latent patches)."""
        h, w = self.latent_size
        return (h // 2) * (w // 2)

    @property
    def is_flux(self) -> bool:
        return type(self.pipe).__name__.startswith("Flux")

    @property
    def size_multiple(self) -> int:
        """What height and width must be multiples of: the VAE's scale factor, times the
        transformer's patch size (SD3) or the 2x2 latent packing (Flux)."""
        scale = self.vae_scale_factor
        if self.is_flux:
            return scale * 2
        transformer = getattr(self.pipe, "transformer", None)
        patch = getattr(getattr(transformer, "config", None), "patch_size", None)
        return scale * (patch or 1)

    @property
    def on_meta(self) -> bool:
        return str(self.device) == "meta"

    def example(self, *shape: int, dtype: Any = None, low: float = -1.0, high: float = 1.0) -> Any:
        """A seeded example tensor on the component's device (empty on ``meta``)."""
        import torch

        dtype = dtype or self.dtype
        if self.on_meta:
            return torch.empty(shape, dtype=dtype, device="meta")
        gen = torch.Generator().manual_seed(self.options.seed)
        data = torch.rand(shape, generator=gen, dtype=torch.float32) * (high - low) + low
        return data.to(device=self.device, dtype=dtype)

    def capture(self, module: Any, call: Any) -> Capture:
        if self.shared.get("memory_only"):  # a --fits probe: activations only, no hooks, no FLOPs
            return capture(module, call, count_flops=False, layers=False)
        return capture(module, call)

    def base_result(self, component: Component, kind: str, plugin: str) -> ComponentResult:
        """A result filled with what every component has: identity and, for modules, parameters."""
        result = ComponentResult(
            name=component.name, class_name=component.class_name,
            library=component.library or _library_of(component.obj), present=component.present,
            kind=kind, plugin=plugin,
        )
        if component.present and component.is_module:
            result.parameters = ParameterStats(**parameter_stats(component.obj))
            result.details["dtype"] = _module_dtype(component.obj)
            result.details["device"] = _module_device(component.obj)
        return result

    def fill_capture(self, result: ComponentResult, cap: Capture, outputs: Any, prefix: str = "") -> None:
        result.layers.extend(cap.layers)
        result.flops = (result.flops or 0) + cap.flops
        result.activation_bytes = max(result.activation_bytes or 0, cap.activation_bytes)
        result.outputs.extend(tensor_infos(outputs, prefix))


def _library_of(obj: Any) -> str | None:
    if obj is None:
        return None
    return type(obj).__module__.split(".")[0]


def _module_dtype(module: Any) -> str | None:
    for p in module.parameters():
        return str(p.dtype).replace("torch.", "")
    return None


def _module_device(module: Any) -> str | None:
    for p in module.parameters():
        return str(p.device)
    return None


def check_size(height: int, width: int, multiple: int) -> None:
    for label, value in (("height", height), ("width", width)):
        if value <= 0 or value % multiple:
            raise OptionError(f"--{label} {value} must be a positive multiple of {multiple} for this pipeline")


def dynamic_shift(config: Any, image_seq_len: int) -> float:
    """The ``mu`` a Flux pipeline passes to a scheduler with ``use_dynamic_shifting`` (linear in the
    number of image tokens between ``base_image_seq_len`` and ``max_image_seq_len``)."""
    base_len = config.get("base_image_seq_len", 256)
    max_len = config.get("max_image_seq_len", 4096)
    base_shift = config.get("base_shift", 0.5)
    max_shift = config.get("max_shift", 1.15)
    slope = (max_shift - base_shift) / (max_len - base_len)
    return image_seq_len * slope + base_shift - slope * base_len


def planned_scheduler(scheduler: Any, steps: int, image_seq_len: int = 4096) -> Any:
    """A fresh copy of ``scheduler`` with its timesteps set for ``steps`` as the pipeline would
    set them; the pipeline's own scheduler is never touched."""
    copy = type(scheduler).from_config(scheduler.config)
    kwargs = {}
    if copy.config.get("use_dynamic_shifting", False):
        kwargs["mu"] = dynamic_shift(copy.config, image_seq_len)
    copy.set_timesteps(steps, **kwargs)
    return copy
