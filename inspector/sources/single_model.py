"""One model instead of a pipeline: ``inspector.inspect(pipe.unet)``, ``inspector.profile(vae, inputs=z)``.

The model is handed to the plugins as the only component of a :class:`SingleModel`, a holder
shaped like a pipeline where the plugins look (``components``, the slot named after the model's
role, the VAE's scale factor). Its inputs are the caller's (``inputs=``), kept as a recorded call
the plugins replay, or, without them, synthesized by the plugin as for a pipeline whose recording
call failed. Nothing is set on the model itself.
"""
from __future__ import annotations

from typing import Any

from inspector.errors import OptionError
from inspector.measure.recording import RecordedCall, Recording

#: What a single model's inputs were, when the caller gave none: the plugins synthesize them
NO_INPUTS = "a single model was given, with no inputs= (nothing to record)"


def role_of(model: Any) -> str:
    """The component name pipelines give a model of this kind: ``unet``, ``transformer``,
    ``vae``, ``text_encoder``; ``model`` for anything else."""
    name = type(model).__name__
    if name.startswith(("UNet", "Unet")):
        return "unet"
    if "Transformer" in name and hasattr(model, "config") and type(model).__module__.startswith("diffusers"):
        return "transformer"
    if callable(getattr(model, "encode", None)) and callable(getattr(model, "decode", None)) and \
            type(model).__module__.startswith("diffusers"):
        return "vae"
    if type(model).__module__.startswith("transformers") and hasattr(getattr(model, "config", None), "vocab_size"):
        return "text_encoder"
    return "model"


class SingleModel:
    """A pipeline-shaped holder for one model: ``components`` is ``{role: model}``."""

    def __init__(self, model: Any, name: str | None = None) -> None:
        self._name = name or role_of(model)
        self._model = model
        if self._name == "vae":  # what a pipeline would compute from its VAE (diffusers' own rule)
            channels = getattr(getattr(model, "config", None), "block_out_channels", None)
            if isinstance(channels, (list, tuple)) and channels:
                self.vae_scale_factor = 2 ** (len(channels) - 1)

    @property
    def name(self) -> str:
        return self._name

    @property
    def model(self) -> Any:
        return self._model

    @property
    def components(self) -> dict[str, Any]:
        return {self._name: self._model}

    def __getattr__(self, item: str) -> Any:
        # the slot named after the model's role (``holder.unet``); every other slot is absent
        if item != "_name" and item == self.__dict__.get("_name"):
            return self.__dict__["_model"]
        raise AttributeError(item)

    def set_progress_bar_config(self, **_kwargs: Any) -> None:
        """A pipeline's progress bar; a single model has none."""

    def __repr__(self) -> str:
        return f"SingleModel({type(self._model).__name__} as {self._name!r})"


def recording_of(holder: SingleModel, inputs: Any) -> Recording:
    """The call the plugins replay: ``inputs`` as the model's own call (a dict: keyword arguments;
    a tuple or list: positional ones; anything else: the one positional argument). An
    autoencoder's inputs are the latents its ``decode`` takes, as pipelines call it."""
    if inputs is None:
        return Recording(error=NO_INPUTS, note="inputs synthesized by the plugins, as for a pipeline: "
                                               "one model was given, without inputs=")
    args: tuple[Any, ...]
    if isinstance(inputs, dict):
        if not all(isinstance(k, str) for k in inputs):
            raise OptionError("inputs=: a dict of inputs is keyword arguments, so its keys must be strings")
        args, kwargs = (), dict(inputs)
    elif isinstance(inputs, (tuple, list)):
        args, kwargs = tuple(inputs), {}
    else:
        args, kwargs = (inputs,), {}
    method = "decode" if holder.name == "vae" else "forward"
    call = RecordedCall(component=holder.name, method=method, args=args, kwargs=kwargs, step=0)
    return Recording(calls={holder.name: [call]}, counts={(holder.name, method, 0): 1}, steps=0, given=True,
                     note="inputs: the inputs= given with the model, replayed as its own call")
