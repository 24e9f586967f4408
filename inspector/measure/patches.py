"""Hooks and method wrappers put on a pipeline for one call, and taken off exactly.

Recording the pipeline's real call inputs, timing its end-to-end call and naming its spans in a
trace all do the same thing: forward hooks on the components, and wrappers around a few methods
(``scheduler.step``, ``vae.decode``). :class:`Patches` does it once, by one rule:

* every wrapper keeps the wrapped callable's signature (``functools.wraps``): pipelines inspect
  ``scheduler.step``'s parameters to decide what to pass, so a bare ``*args`` wrapper would change
  what the pipeline does, and a measuring tool must never change what it measures;
* a wrapper is an instance attribute; on removal the instance attribute that was there before is
  put back, or, where the method came from the class, the instance attribute is deleted, so the
  object is left exactly as found;
* removal undoes everything in reverse order and may be called any number of times.
"""
from __future__ import annotations

import functools
from typing import Any, Callable

#: ``around(original, args, kwargs)`` calls ``original(*args, **kwargs)`` itself and returns its value
Around = Callable[[Callable[..., Any], tuple, dict], Any]


class Patches:
    """A set of forward hooks and method wrappers that :meth:`remove` takes off."""

    def __init__(self) -> None:
        self._handles: list[Any] = []
        self._wrapped: list[tuple[Any, str, bool, Any]] = []

    def hook(self, module: Any, pre: Callable[..., None] | None = None,
             post: Callable[..., None] | None = None) -> None:
        """``pre(module, args, kwargs)`` before and ``post(module, args, kwargs, output)`` after every
        forward call of ``module``; ``post`` runs even when the forward raises."""
        if pre is not None:
            self._handles.append(module.register_forward_pre_hook(pre, with_kwargs=True))
        if post is not None:
            self._handles.append(module.register_forward_hook(post, with_kwargs=True, always_call=True))

    def wrap(self, obj: Any, name: str, around: Around) -> None:
        """Replace ``obj.name`` by a wrapper with the same signature that calls ``around``."""
        had_instance_attr = name in vars(obj)
        original = getattr(obj, name)

        @functools.wraps(original)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            return around(original, args, kwargs)

        setattr(obj, name, wrapper)
        self._wrapped.append((obj, name, had_instance_attr, original))

    def remove(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()
        for obj, name, had_instance_attr, original in reversed(self._wrapped):
            if had_instance_attr:
                setattr(obj, name, original)
            else:
                vars(obj).pop(name, None)
        self._wrapped.clear()
