"""Measurement: hooks put on a pipeline and taken off exactly (``patches``), per-layer capture and
FLOPs (``capture``, ``metaops``), activation bytes and the memory plan (``activations``,
``memory_plan``), timing (``timing``), operators and traces (``operators``), the pipeline's own
calls (``recording``, ``calls``, ``tracing``), the device (``devices``) and the machine's load
(``machine``)."""
