"""Built-in plugins, one module per component kind, installed as ``inspector.plugins``.

They are registered through the same path as third-party plugins
(:meth:`inspector.plugin.host.Host.load_module` / :meth:`~inspector.plugin.host.Host.register`)
and can be blocked by their short name, e.g.
``LDM_INSPECTOR_BLOCK_PLUGINS=vae``. ``generic`` handles whatever no other
plugin claims and runs last.
"""

BUILTIN_PLUGINS = (
    "inspector.plugins.presets",
    "inspector.plugins.tokenizer",
    "inspector.plugins.text_encoder",
    "inspector.plugins.unet",
    "inspector.plugins.transformer",
    "inspector.plugins.vae",
    "inspector.plugins.scheduler",
    "inspector.plugins.safety_checker",
    "inspector.plugins.pipeline",
    "inspector.plugins.generic",
)
