"""The package's version, in a module of its own: the plugin host records it for the built-in
plugins, and importing it does not import the package root (which brings the Python API)."""

__version__ = "0.1.0"
