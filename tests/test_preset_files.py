"""The shipped presets keep one copy of the stand-in CLIP vocabulary, used by them alone."""
from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest

from inspector.errors import SourceError
from inspector.sources.loading import SourceSpec, build_from_configs, load
from inspector.sources.preset_files import (
    CLIP_TOKENIZER_FILES,
    SHARED_DIR,
    materialize_preset,
    shared_clip_tokenizer_dir,
    shared_files,
    shipped_presets,
    shipped_presets_dir,
)

PROMPT = "a photograph of an astronaut riding a horse"
#: ids of PROMPT with the stand-in vocabulary, padded to 12 (taken before the vocabulary was shared)
STAND_IN_IDS = [980, 320, 540, 515, 512, 568, 573, 320, 577, 981]
PAD_IDS = {"<|endoftext|>": 981, "!": 0}


def clip_tokenizer_folders() -> list[Path]:
    folders = []
    for preset in shipped_presets().values():
        index = json.loads((preset / "model_index.json").read_text())
        folders += [preset / name for name, entry in index.items()
                    if isinstance(entry, list) and entry[1] == "CLIPTokenizer"]
    return folders


def test_no_preset_holds_a_copy_of_the_shared_vocabulary():
    shared = {hashlib.sha256(p.read_bytes()).hexdigest(): p for p in shared_clip_tokenizer_dir().iterdir()}
    assert sorted(p.name for p in shared.values()) == sorted(CLIP_TOKENIZER_FILES)
    root = shipped_presets_dir()
    copies = [str(p.relative_to(root)) for p in root.rglob("*")
              if p.is_file() and p.parent != shared_clip_tokenizer_dir()
              and hashlib.sha256(p.read_bytes()).hexdigest() in shared]
    assert copies == []
    # nor any other sizeable file twice
    seen: dict[str, Path] = {}
    for path in sorted(root.rglob("*")):
        if path.is_file() and path.stat().st_size > 4096:
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
            assert digest not in seen, f"{path} repeats {seen[digest]}"
            seen[digest] = path


def test_every_clip_tokenizer_folder_keeps_its_own_settings_and_shares_the_vocabulary():
    folders = clip_tokenizer_folders()
    assert len(folders) == 13
    for folder in folders:
        assert (folder / "tokenizer_config.json").is_file() and (folder / "special_tokens_map.json").is_file()
        assert set(shared_files(folder, "CLIPTokenizer")) == set(CLIP_TOKENIZER_FILES), folder


def test_the_shared_folder_is_not_a_preset(host, cli):
    assert SHARED_DIR not in shipped_presets()
    assert SHARED_DIR not in host.presets()
    result = cli("presets")
    assert result.code == 0 and SHARED_DIR not in result.out


@pytest.mark.parametrize("preset", sorted(shipped_presets()))
def test_presets_tokenize_as_before(preset, monkeypatch):
    import inspector.sources.vocab

    monkeypatch.setattr(inspector.sources.vocab, "real_clip_tokenizer", lambda **kwargs: None)  # the stand-in itself
    pipe = build_from_configs(shipped_presets()[preset], "meta", SourceSpec(model=preset))
    checked = 0
    for name, tok in pipe.components.items():
        if type(tok).__name__ == "CLIPTokenizer":
            assert len(tok) == 982
            ids = tok(PROMPT, padding="max_length", max_length=12).input_ids
            assert ids == STAND_IN_IDS + [PAD_IDS[str(tok.pad_token)]] * 2, name
            checked += 1
    assert checked >= 1


def test_a_users_folder_never_gets_the_shared_vocabulary(presets, tmp_path):
    folder = tmp_path / "model"
    shutil.copytree(shipped_presets()["tiny-sd"], folder)  # the preset's files, not its shared ones
    assert shared_files(folder / "tokenizer", "CLIPTokenizer") == {}
    for weights in ("meta", "pretrained"):
        with pytest.raises(SourceError, match=r"tokenizer \(CLIPTokenizer\) has no vocab.json or merges.txt"):
            load(SourceSpec(model=str(folder), weights=weights), presets)
    shutil.copyfile(shared_clip_tokenizer_dir() / "merges.txt", folder / "tokenizer" / "merges.txt")
    with pytest.raises(SourceError, match=r"has no vocab.json \(and no tokenizer.json\)"):
        load(SourceSpec(model=str(folder), weights="meta"), presets)


def test_a_materialized_preset_is_a_complete_folder(presets, tmp_path):
    folder = materialize_preset(shipped_presets()["tiny-sd"], tmp_path / "model")
    for name in CLIP_TOKENIZER_FILES:
        assert (folder / "tokenizer" / name).read_bytes() == (shared_clip_tokenizer_dir() / name).read_bytes()
    pipe = load(SourceSpec(model=str(folder), weights="meta"), presets).pipe
    assert len(pipe.tokenizer) == 982


def test_a_preset_folder_that_cannot_be_copied_is_one_line(tmp_path):
    import os

    folder = tmp_path / "plugin-preset"
    shutil.copytree(shipped_presets()["tiny-sd"], folder)
    os.mkfifo(folder / "unet" / "weights.fifo")
    with pytest.raises(SourceError, match="cannot copy the preset folder .*named pipe"):
        materialize_preset(folder, tmp_path / "copy")
