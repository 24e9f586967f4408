"""The plugin system: hook specifications (``hookspecs``), the host that loads plugins and calls
them in isolation (``host``), the checks on what plugins hand back (``validation``), what a plugin
is handed (``context``) and helpers for describing views (``views``).

Plugin authors import from :mod:`inspector.api`, not from here."""
