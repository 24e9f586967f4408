"""Tokenizers: the real CLIP vocabulary offline (when open-clip-torch is installed), truncation shown."""
from __future__ import annotations

from inspector.inspection import run_inspect
from inspector.plugin.context import InspectOptions
from inspector.sources.loading import SourceSpec
from inspector.sources.vocab import clip_bpe_file, real_clip_tokenizer

from .optional import check_required, needs

needs_vocab = needs("CLIP_VOCAB", clip_bpe_file() is not None, "open-clip-torch is not installed")


def test_clip_vocabulary_is_installed_where_required():
    check_required("CLIP_VOCAB", clip_bpe_file() is not None,
                   "pip install --no-deps open-clip-torch==3.3.0 (see README)")


@needs_vocab
def test_real_clip_vocabulary_gives_clip_token_ids():
    tok = real_clip_tokenizer()
    assert len(tok) == 49408
    # the canonical CLIP example: "a photo of a cat"
    assert tok("a photo of a cat")["input_ids"] == [49406, 320, 1125, 539, 320, 2368, 49407]


@needs_vocab
def test_presets_use_the_real_vocabulary_and_keep_their_pad_tokens(host):
    run = run_inspect(host, SourceSpec(model="sdxl"), InspectOptions(steps=2, height=256, width=256))
    for name, pad in (("tokenizer", "<|endoftext|>"), ("tokenizer_2", "!")):
        tok = run.component(name)
        assert tok.details["vocab_size"] == 49408
        assert tok.details["pad_token"] == pad
        assert "open_clip_torch" in tok.details["vocabulary"]
        assert not tok.notes
        assert tok.details["prompt_ids"][:3] == [49406, 320, 1125]  # "a photo"


def test_tiny_model_keeps_its_labelled_stand_in(host):
    run = run_inspect(host, SourceSpec(model="tiny-sd"), InspectOptions(steps=2))
    tok = run.component("tokenizer")
    assert tok.details["vocab_size"] == 982  # fits the tiny text encoder's 1,000-row embedding
    assert tok.notes[0].startswith("stand-in vocabulary (982 tokens)")


def test_truncation_is_shown(host):
    long_prompt = " ".join(["castle"] * 80) + " and a dragon"
    run = run_inspect(host, SourceSpec(model="tiny-sd"), InspectOptions(steps=2, prompt=long_prompt))
    tok = run.component("tokenizer")
    assert tok.details["truncated"] is True
    assert tok.details["prompt_token_count"] > 77
    assert len(tok.details["prompt_ids"]) == 77
    assert "dragon" in tok.details["dropped_text"]
    assert any("truncation drops" in note for note in tok.notes)
