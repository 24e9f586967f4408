"""CLIP's BPE vocabulary, offline.

The real 49,408-token vocabulary ships inside the ``open-clip-torch`` package as
``open_clip/bpe_simple_vocab_16e6.txt.gz``. We read that data file through
``importlib.metadata`` without importing ``open_clip`` (which needs torchvision),
so ``pip install --no-deps open-clip-torch`` is all it takes. Without it, presets
keep the small stand-in vocabulary written by ``scripts/make_presets.py``.
"""
from __future__ import annotations

import gzip
from functools import lru_cache
from importlib import metadata
from pathlib import Path
from typing import Any

DISTRIBUTION = "open_clip_torch"
DATA_FILE = "open_clip/bpe_simple_vocab_16e6.txt.gz"
#: CLIP keeps the first 49152 - 256 - 2 merges of the file (its SimpleTokenizer does the same).
MERGE_COUNT = 49152 - 256 - 2
SOURCE_NOTE = f"CLIP BPE vocabulary (49,408 tokens) from the {DISTRIBUTION} package's {Path(DATA_FILE).name}"


def bytes_to_unicode() -> dict[int, str]:
    """CLIP's reversible byte -> printable-unicode table."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, (chr(c) for c in cs)))


def clip_bpe_file() -> Path | None:
    """Where the real vocabulary lies, or ``None`` when the package is not installed."""
    try:
        dist = metadata.distribution(DISTRIBUTION)
    except metadata.PackageNotFoundError:
        return None
    path = Path(str(dist.locate_file(DATA_FILE)))
    return path if path.is_file() else None


@lru_cache(maxsize=1)
def clip_vocab() -> tuple[dict[str, int], list[tuple[str, str]]] | None:
    path = clip_bpe_file()
    if path is None:
        return None
    lines = gzip.decompress(path.read_bytes()).decode("utf-8").split("\n")
    merges = [tuple(line.split()) for line in lines[1 : MERGE_COUNT + 1]]
    symbols = list(bytes_to_unicode().values())
    tokens = symbols + [s + "</w>" for s in symbols] + ["".join(m) for m in merges]
    tokens += ["<|startoftext|>", "<|endoftext|>"]
    return {tok: i for i, tok in enumerate(tokens)}, merges  # type: ignore[return-value]


def real_clip_tokenizer(pad_token: str = "<|endoftext|>", model_max_length: int = 77) -> Any | None:
    """A transformers ``CLIPTokenizer`` on the real vocabulary, or ``None`` without the package."""
    loaded = clip_vocab()
    if loaded is None:
        return None
    from transformers import CLIPTokenizer

    vocab, merges = loaded
    tokenizer = CLIPTokenizer(vocab=dict(vocab), merges=list(merges), model_max_length=model_max_length,
                              bos_token="<|startoftext|>", eos_token="<|endoftext|>",
                              unk_token="<|endoftext|>", pad_token=pad_token)
    tokenizer.init_kwargs["ldm_inspector_vocabulary"] = SOURCE_NOTE
    return tokenizer


def upgrade_tokenizers(pipe: Any) -> list[str]:
    """Swap stand-in tokenizers marked ``ldm_inspector_vocab: clip`` for the real vocabulary when it is
    installed. Returns the names of the swapped components."""
    swapped = []
    for name, comp in list(pipe.components.items()):
        marker = getattr(comp, "init_kwargs", {}).get("ldm_inspector_vocab") if comp is not None else None
        if marker != "clip":
            continue
        real = real_clip_tokenizer(pad_token=str(comp.pad_token), model_max_length=comp.model_max_length)
        if real is not None:
            setattr(pipe, name, real)
            pipe.register_to_config(**{name: (type(real).__module__.split(".")[0], type(real).__name__)})
            swapped.append(name)
    return swapped
