"""Sweeps: a grid of points (``grid``), each measured in a process of its own (``points``), run
locally or on Ray (``run``, ``ray``), kept in a sweep folder (``folder``) and tabulated (``tables``).

No torch or diffusers here: the points import them."""
