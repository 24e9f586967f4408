"""ldm-inspector: see what every component of a latent diffusion pipeline does.

Plugin authors import :data:`hookimpl` from here::

    from inspector import hookimpl

    @hookimpl
    def augment_component(context, component, result):
        result.details["my_metric"] = ...
"""
from .hookspecs import API_VERSION, hookimpl

__version__ = "0.1.0"

__all__ = ["API_VERSION", "__version__", "hookimpl"]
