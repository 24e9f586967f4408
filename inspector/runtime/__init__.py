"""The process around a run: signals (``signals``) and the libraries' own warnings (``libraries``)."""
