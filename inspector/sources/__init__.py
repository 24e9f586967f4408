"""Where a pipeline comes from: the user's input checked before the libraries import (``precheck``),
model folders and their trust rules (``trust``, ``checkpoints``, ``limits``), the shipped presets
(``preset_files``), the memory guard before weights exist (``memory_guard``), and loading through
diffusers' own loaders (``loading``, ``vocab``)."""
