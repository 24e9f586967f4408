"""The result model: plain dataclasses every front end reads (``records``), their JSON form and
migration (``serialize``), the JSON Schema generated from them (``schema``), one number format
(``units``) and the denoiser's top-level blocks (``blocks``). Imports nothing else of ours."""
