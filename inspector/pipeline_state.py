"""Leave a caller's pipeline exactly as it was found: :func:`preserved`.

``inspector.inspect(pipe)`` and ``inspector.profile(pipe)`` run the user's own pipeline object. What
a run changes on it, found by experiment, and what is taken here to put it back:

* the scheduler: the end-to-end calls run ``pipe(...)``, which calls ``set_timesteps`` and steps the
  scheduler (``timesteps``, ``num_inference_steps``, ``_step_index``, ``_begin_index``, ``sigmas``, a
  multistep scheduler's model outputs); ``scheduler=`` swaps the object itself;
* the progress bar: profile calls ``pipe.set_progress_bar_config(disable=True)``, and recording the
  pipeline's call writes ``pipe._progress_bar_config`` (creating it where it was absent);
* ``attention=`` sets new attention processors on the UNet or transformer;
* the example calls put modules in eval mode; a forward hook or a method wrapper that is left behind
  (by a plugin, or a run cut short) would stay on the module;
* every seeded call moves the global random number generators forward.

Nothing is imported at module level: the package root stays light.
"""
from __future__ import annotations

import contextlib
import copy
import random
from dataclasses import dataclass, field
from typing import Any, Iterator

#: the per-module hook dictionaries of ``torch.nn.Module`` (those this torch has)
HOOK_DICTS = ("_forward_hooks", "_forward_pre_hooks", "_forward_hooks_with_kwargs",
              "_forward_pre_hooks_with_kwargs", "_forward_hooks_always_called", "_backward_hooks",
              "_backward_pre_hooks", "_state_dict_hooks", "_load_state_dict_pre_hooks")


@dataclass
class _ModuleState:
    module: Any
    training: bool
    hooks: dict[str, dict[Any, Any]]
    #: instance attributes that are callables (a wrapped ``forward``, say): name -> object
    callables: dict[str, Any]


@dataclass
class _ObjectState:
    """An object's instance ``__dict__``: the original values, and copies of their contents."""

    obj: Any
    values: dict[str, Any]
    copies: dict[str, Any]


@dataclass
class PipelineState:
    """What :func:`preserved` puts back. :meth:`take` records it, :meth:`restore` restores it."""

    pipe: Any
    components: dict[str, Any] = field(default_factory=dict)
    objects: list[_ObjectState] = field(default_factory=list)
    modules: list[_ModuleState] = field(default_factory=list)
    requires_grad: list[tuple[Any, bool]] = field(default_factory=list)
    processors: dict[str, dict[str, Any]] = field(default_factory=dict)
    progress_bar: Any = None
    had_progress_bar: bool = False
    rng: dict[str, Any] = field(default_factory=dict)
    torch_settings: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def take(cls, pipe: Any) -> "PipelineState":
        import torch

        state = cls(pipe=pipe)
        components = getattr(pipe, "components", None)
        state.components = dict(components) if isinstance(components, dict) else {}
        state.had_progress_bar = pipe is not None and "_progress_bar_config" in vars(pipe)
        if state.had_progress_bar:
            state.progress_bar = (pipe._progress_bar_config, copy.deepcopy(pipe._progress_bar_config))
        seen: set[int] = set()
        for name, comp in state.components.items():
            if isinstance(comp, torch.nn.Module):
                for module in comp.modules():
                    if id(module) in seen:
                        continue
                    seen.add(id(module))
                    state.modules.append(_ModuleState(
                        module=module, training=module.training,
                        hooks={d: dict(getattr(module, d)) for d in HOOK_DICTS
                               if isinstance(getattr(module, d, None), dict)},
                        callables={k: v for k, v in vars(module).items() if callable(v) and not _is_torch_value(v)}))
                state.requires_grad.extend((p, p.requires_grad) for p in comp.parameters())
                processors = getattr(comp, "attn_processors", None)
                if isinstance(processors, dict) and processors and callable(getattr(comp, "set_attn_processor", None)):
                    state.processors[name] = dict(processors)
            elif comp is not None and hasattr(comp, "__dict__"):  # a scheduler; tokenizers hold no run state
                if hasattr(comp, "set_timesteps") or hasattr(comp, "config"):
                    state.objects.append(_object_state(comp))
        state.rng = {"torch": torch.get_rng_state(), "random": random.getstate()}
        try:
            import numpy

            state.rng["numpy"] = numpy.random.get_state()
        except ImportError:  # pragma: no cover - numpy comes with torch and diffusers
            pass
        if torch.cuda.is_available() and torch.cuda.is_initialized():
            state.rng["cuda"] = torch.cuda.get_rng_state_all()
        state.torch_settings = {"grad": torch.is_grad_enabled(), "dtype": torch.get_default_dtype(),
                                "threads": torch.get_num_threads()}
        return state

    def restore(self) -> None:
        """Put everything back; each part on its own, so one that fails cannot keep the others."""
        import torch

        pipe = self.pipe
        for name, comp in self.components.items():
            with contextlib.suppress(Exception):
                if getattr(pipe, name, None) is not comp:
                    setattr(pipe, name, comp)
        for obj in self.objects:
            with contextlib.suppress(Exception):
                _restore_object(obj)
        for name, processors in self.processors.items():
            comp = self.components[name]
            with contextlib.suppress(Exception):
                now = comp.attn_processors
                if now.keys() != processors.keys() or any(now[k] is not v for k, v in processors.items()):
                    comp.set_attn_processor(dict(processors))
        for m in self.modules:
            with contextlib.suppress(Exception):
                _restore_module(m)
        for param, flag in self.requires_grad:
            if param.requires_grad != flag:
                with contextlib.suppress(Exception):
                    param.requires_grad_(flag)
        with contextlib.suppress(Exception):
            if pipe is None:
                pass
            elif self.had_progress_bar:
                original, contents = self.progress_bar
                original.clear()
                original.update(contents)
                pipe._progress_bar_config = original
            elif "_progress_bar_config" in vars(pipe):
                del pipe._progress_bar_config
        torch.set_rng_state(self.rng["torch"])
        random.setstate(self.rng["random"])
        if "numpy" in self.rng:
            import numpy

            numpy.random.set_state(self.rng["numpy"])
        if "cuda" in self.rng:
            torch.cuda.set_rng_state_all(self.rng["cuda"])
        torch.set_grad_enabled(self.torch_settings["grad"])
        if torch.get_default_dtype() != self.torch_settings["dtype"]:
            torch.set_default_dtype(self.torch_settings["dtype"])
        if torch.get_num_threads() != self.torch_settings["threads"]:
            torch.set_num_threads(self.torch_settings["threads"])


def _object_state(obj: Any) -> _ObjectState:
    values = dict(vars(obj))
    copies = {}
    for key, value in values.items():
        try:
            copies[key] = copy.deepcopy(value)
        except Exception:  # noqa: BLE001 - a value that cannot be copied is put back as an object only
            pass
    return _ObjectState(obj=obj, values=values, copies=copies)


def _restore_object(state: _ObjectState) -> None:
    """The same attributes, holding the same objects, with the contents they had."""
    now = vars(state.obj)
    for key in [k for k in now if k not in state.values]:
        del now[key]
    now.update(state.values)  # every attribute first: a content check below cannot keep one back
    for key, value in state.values.items():
        if key in state.copies:
            with contextlib.suppress(Exception):
                _restore_contents(value, state.copies[key])


def _restore_contents(value: Any, saved: Any) -> None:
    """Put ``saved``'s contents back into ``value`` where the run changed it in place."""
    import torch

    if isinstance(value, torch.Tensor):
        same_kind = value.shape == saved.shape and value.dtype == saved.dtype
        if same_kind and not torch.equal(value, saved.to(value.device)):
            with torch.no_grad():
                value.copy_(saved)
    elif isinstance(value, list) and not _same(value, saved):
        value[:] = saved
    elif isinstance(value, dict) and not _same(value, saved):
        value.clear()
        value.update(saved)


def _same(a: Any, b: Any) -> bool:
    """Whether two lists or dicts hold the same values (tensors inside compared as tensors)."""
    import torch

    if type(a) is not type(b) or len(a) != len(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, torch.Tensor):
        return a.shape == b.shape and a.dtype == b.dtype and bool(torch.equal(a, b.to(a.device)))
    try:
        return bool(a == b)
    except Exception:  # noqa: BLE001 - an array or other value without one truth: count as changed
        return False


def _restore_module(state: _ModuleState) -> None:
    module = state.module
    if module.training != state.training:
        module.training = state.training  # this module only: its children have their own entries
    for name, saved in state.hooks.items():
        hooks = getattr(module, name)
        if list(hooks.items()) != list(saved.items()):
            hooks.clear()
            hooks.update(saved)
    now = vars(module)
    for key in [k for k, v in now.items() if callable(v) and k not in state.callables
                and not _is_torch_value(v)]:
        del now[key]
    for key, value in state.callables.items():
        if now.get(key) is not value:
            now[key] = value


def _is_torch_value(value: Any) -> bool:
    import torch

    return isinstance(value, (torch.nn.Module, torch.Tensor))


@contextlib.contextmanager
def preserved(pipe: Any) -> Iterator[PipelineState]:
    """Run the body, then put ``pipe`` and the global random state back as they were, whether the
    body returned, raised or was interrupted. ``pipe=None``: the global state only (a pipeline the
    run loads itself is the run's own)."""
    state = PipelineState.take(pipe)
    try:
        yield state
    finally:
        state.restore()
