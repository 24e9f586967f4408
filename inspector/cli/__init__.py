"""The command line: commands and options (``commands``), where outputs go (``outputs``) and the
terminal rendering of runs and sweeps (``terminal``, ``sweep_terminal``). The only package of
ldm-inspector that imports ``click``."""
