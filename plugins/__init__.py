"""Built-in plugins, one module per component kind, installed as ``inspector.plugins``.

They are registered through the same path as third-party plugins
(:meth:`inspector.plugin.host.Host.load_module` / :meth:`~inspector.plugin.host.Host.register`)
and can be blocked by their short name, e.g.
``LDM_INSPECTOR_BLOCK_PLUGINS=vae``. ``generic`` handles whatever no other
plugin claims and runs last. The list of them is
:data:`inspector.plugin.host.BUILTIN_PLUGINS` (module names: the host imports them as it imports any
plugin, and this package imports nothing of the host).
"""
