"""Write the architecture presets shipped in ``inspector/presets/``.

Each preset is a diffusers folder without weights: ``model_index.json`` plus one
config per component, the same layout ``save_pretrained`` writes. Shipping them
as folders lets one code path build a preset on ``meta``, and lets diffusers'
own ``from_single_file(config=...)`` read them for single-file checkpoints.

The configs are those published with the original checkpoints (SD 1.5, SD 2.1,
SDXL base 1.0). The tokenizer in every preset is a small stand-in CLIP BPE
vocabulary generated here (see ``tiny_clip_vocab``), labelled as such. Its
``vocab.json`` and ``merges.txt`` are written once, to ``presets/_shared/clip-tokenizer/``
(``inspector/sources/preset_files.py`` points the presets' tokenizers there); each tokenizer
folder keeps its own ``tokenizer_config.json`` and ``special_tokens_map.json``. The
full-size presets mark theirs ``ldm_inspector_vocab: clip``, and loading swaps in
the real 49,408-token vocabulary when the open-clip-torch package is installed
(``inspector/sources/vocab.py``). Run ``python scripts/make_presets.py``
after editing this file and commit its output.
"""
from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from inspector.sources.preset_files import CLIP_TOKENIZER_DIR, SHARED_DIR
from inspector.sources.vocab import bytes_to_unicode

OUT = Path(__file__).resolve().parent.parent / "inspector" / "presets"

SCALED_LINEAR = {
    "beta_start": 0.00085,
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
    "num_train_timesteps": 1000,
    "trained_betas": None,
    "steps_offset": 1,
}

SD_VAE = {
    "_class_name": "AutoencoderKL",
    "act_fn": "silu",
    "block_out_channels": [128, 256, 512, 512],
    "down_block_types": ["DownEncoderBlock2D"] * 4,
    "up_block_types": ["UpDecoderBlock2D"] * 4,
    "in_channels": 3,
    "out_channels": 3,
    "latent_channels": 4,
    "layers_per_block": 2,
    "norm_num_groups": 32,
    "sample_size": 512,
    "scaling_factor": 0.18215,
}

CLIP_L = {
    "architectures": ["CLIPTextModel"],
    "model_type": "clip_text_model",
    "hidden_size": 768,
    "intermediate_size": 3072,
    "num_attention_heads": 12,
    "num_hidden_layers": 12,
    "projection_dim": 768,
    "hidden_act": "quick_gelu",
    "max_position_embeddings": 77,
    "vocab_size": 49408,
    "layer_norm_eps": 1e-05,
    "attention_dropout": 0.0,
    "dropout": 0.0,
    "initializer_factor": 1.0,
    "initializer_range": 0.02,
    "bos_token_id": 0,
    "eos_token_id": 2,
    "pad_token_id": 1,
}

SD_UNET_COMMON = {
    "_class_name": "UNet2DConditionModel",
    "act_fn": "silu",
    "block_out_channels": [320, 640, 1280, 1280],
    "center_input_sample": False,
    "down_block_types": ["CrossAttnDownBlock2D"] * 3 + ["DownBlock2D"],
    "up_block_types": ["UpBlock2D"] + ["CrossAttnUpBlock2D"] * 3,
    "downsample_padding": 1,
    "flip_sin_to_cos": True,
    "freq_shift": 0,
    "in_channels": 4,
    "out_channels": 4,
    "layers_per_block": 2,
    "mid_block_scale_factor": 1,
    "norm_eps": 1e-05,
    "norm_num_groups": 32,
}


#: SD 1.5's safety checker: a CLIP ViT-L/14 vision tower, a 768-wide projection and the concept
#: embeddings (``StableDiffusionSafetyChecker``), as runwayml/stable-diffusion-v1-5 ships it.
SD15_SAFETY_CHECKER = {
    "architectures": ["StableDiffusionSafetyChecker"],
    "model_type": "clip",
    "projection_dim": 768,
    "text_config": {"hidden_size": 768, "intermediate_size": 3072, "num_attention_heads": 12,
                    "num_hidden_layers": 12, "max_position_embeddings": 77, "vocab_size": 49408},
    "vision_config": {"hidden_size": 1024, "intermediate_size": 4096, "num_attention_heads": 16,
                      "num_hidden_layers": 24, "patch_size": 14, "image_size": 224},
}
SD15_FEATURE_EXTRACTOR = {
    "crop_size": {"height": 224, "width": 224},
    "do_center_crop": True,
    "do_convert_rgb": True,
    "do_normalize": True,
    "do_rescale": True,
    "do_resize": True,
    "image_mean": [0.48145466, 0.4578275, 0.40821073],
    "image_processor_type": "CLIPImageProcessor",
    "image_std": [0.26862954, 0.26130258, 0.27577711],
    "resample": 3,
    "rescale_factor": 0.00392156862745098,
    "size": {"shortest_edge": 224},
}


def sd15() -> dict:
    return {
        "model_index.json": {
            "_class_name": "StableDiffusionPipeline",
            "feature_extractor": ["transformers", "CLIPImageProcessor"],
            "safety_checker": ["stable_diffusion", "StableDiffusionSafetyChecker"],
            "requires_safety_checker": True,
            "scheduler": ["diffusers", "PNDMScheduler"],
            "text_encoder": ["transformers", "CLIPTextModel"],
            "tokenizer": ["transformers", "CLIPTokenizer"],
            "unet": ["diffusers", "UNet2DConditionModel"],
            "vae": ["diffusers", "AutoencoderKL"],
        },
        "unet/config.json": {**SD_UNET_COMMON, "attention_head_dim": 8, "cross_attention_dim": 768, "sample_size": 64},
        "vae/config.json": SD_VAE,
        "text_encoder/config.json": CLIP_L,
        "safety_checker/config.json": SD15_SAFETY_CHECKER,
        "feature_extractor/preprocessor_config.json": SD15_FEATURE_EXTRACTOR,
        "scheduler/scheduler_config.json": {
            "_class_name": "PNDMScheduler",
            **SCALED_LINEAR,
            "set_alpha_to_one": False,
            "skip_prk_steps": True,
            "clip_sample": False,
            "prediction_type": "epsilon",
        },
    }


def sd21() -> dict:
    return {
        "model_index.json": {
            "_class_name": "StableDiffusionPipeline",
            "feature_extractor": [None, None],
            "safety_checker": [None, None],
            "requires_safety_checker": False,
            "scheduler": ["diffusers", "DDIMScheduler"],
            "text_encoder": ["transformers", "CLIPTextModel"],
            "tokenizer": ["transformers", "CLIPTokenizer"],
            "unet": ["diffusers", "UNet2DConditionModel"],
            "vae": ["diffusers", "AutoencoderKL"],
        },
        "unet/config.json": {
            **SD_UNET_COMMON,
            "attention_head_dim": [5, 10, 20, 20],
            "cross_attention_dim": 1024,
            "sample_size": 96,
            "use_linear_projection": True,
            "upcast_attention": True,
        },
        "vae/config.json": {**SD_VAE, "sample_size": 768},
        "text_encoder/config.json": {
            **CLIP_L,
            "hidden_size": 1024,
            "intermediate_size": 4096,
            "num_attention_heads": 16,
            "num_hidden_layers": 23,
            "projection_dim": 512,
            "hidden_act": "gelu",
        },
        "scheduler/scheduler_config.json": {
            "_class_name": "DDIMScheduler",
            **SCALED_LINEAR,
            "clip_sample": False,
            "set_alpha_to_one": False,
            "prediction_type": "v_prediction",
        },
    }


def sdxl() -> dict:
    return {
        "model_index.json": {
            "_class_name": "StableDiffusionXLPipeline",
            "force_zeros_for_empty_prompt": True,
            "feature_extractor": [None, None],
            "image_encoder": [None, None],
            "scheduler": ["diffusers", "EulerDiscreteScheduler"],
            "text_encoder": ["transformers", "CLIPTextModel"],
            "text_encoder_2": ["transformers", "CLIPTextModelWithProjection"],
            "tokenizer": ["transformers", "CLIPTokenizer"],
            "tokenizer_2": ["transformers", "CLIPTokenizer"],
            "unet": ["diffusers", "UNet2DConditionModel"],
            "vae": ["diffusers", "AutoencoderKL"],
        },
        "unet/config.json": {
            **SD_UNET_COMMON,
            "block_out_channels": [320, 640, 1280],
            "down_block_types": ["DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"],
            "up_block_types": ["CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"],
            "attention_head_dim": [5, 10, 20],
            "transformer_layers_per_block": [1, 2, 10],
            "cross_attention_dim": 2048,
            "addition_embed_type": "text_time",
            "addition_embed_type_num_heads": 64,
            "addition_time_embed_dim": 256,
            "projection_class_embeddings_input_dim": 2816,
            "sample_size": 128,
            "use_linear_projection": True,
        },
        "vae/config.json": {**SD_VAE, "sample_size": 1024, "scaling_factor": 0.13025, "force_upcast": True},
        "text_encoder/config.json": CLIP_L,
        "text_encoder_2/config.json": {
            **CLIP_L,
            "architectures": ["CLIPTextModelWithProjection"],
            "hidden_size": 1280,
            "intermediate_size": 5120,
            "num_attention_heads": 20,
            "num_hidden_layers": 32,
            "projection_dim": 1280,
            "hidden_act": "gelu",
        },
        "scheduler/scheduler_config.json": {
            "_class_name": "EulerDiscreteScheduler",
            **SCALED_LINEAR,
            "interpolation_type": "linear",
            "prediction_type": "epsilon",
            "timestep_spacing": "leading",
            "use_karras_sigmas": False,
        },
    }


def tiny_sd() -> dict:
    """A Stable-Diffusion-shaped pipeline small enough to run 10 steps on a CPU in a second."""
    return {
        "model_index.json": {
            "_class_name": "StableDiffusionPipeline",
            "feature_extractor": [None, None],
            "safety_checker": [None, None],
            "requires_safety_checker": False,
            "scheduler": ["diffusers", "PNDMScheduler"],
            "text_encoder": ["transformers", "CLIPTextModel"],
            "tokenizer": ["transformers", "CLIPTokenizer"],
            "unet": ["diffusers", "UNet2DConditionModel"],
            "vae": ["diffusers", "AutoencoderKL"],
        },
        "unet/config.json": {
            **SD_UNET_COMMON,
            "block_out_channels": [32, 64],
            "down_block_types": ["DownBlock2D", "CrossAttnDownBlock2D"],
            "up_block_types": ["CrossAttnUpBlock2D", "UpBlock2D"],
            "attention_head_dim": 8,
            "cross_attention_dim": 32,
            "sample_size": 16,
        },
        "vae/config.json": {
            **SD_VAE,
            "block_out_channels": [16, 32, 32, 32],
            "layers_per_block": 1,
            "norm_num_groups": 8,
            "sample_size": 128,
        },
        "text_encoder/config.json": {
            **CLIP_L,
            "hidden_size": 32,
            "intermediate_size": 37,
            "num_attention_heads": 4,
            "num_hidden_layers": 5,
            "projection_dim": 32,
            "vocab_size": 1000,
        },
        "scheduler/scheduler_config.json": sd15()["scheduler/scheduler_config.json"],
    }


CLIP_G = {
    **CLIP_L,
    "architectures": ["CLIPTextModelWithProjection"],
    "hidden_size": 1280, "intermediate_size": 5120, "num_attention_heads": 20, "num_hidden_layers": 32,
    "projection_dim": 1280, "hidden_act": "gelu",
}

T5_XXL = {
    "architectures": ["T5EncoderModel"], "model_type": "t5", "d_model": 4096, "d_ff": 10240, "d_kv": 64,
    "num_heads": 64, "num_layers": 24, "vocab_size": 32128, "feed_forward_proj": "gated-gelu",
    "dense_act_fn": "gelu_new", "is_gated_act": True, "layer_norm_epsilon": 1e-06,
    "relative_attention_num_buckets": 32, "relative_attention_max_distance": 128, "dropout_rate": 0.1,
    "tie_word_embeddings": False, "pad_token_id": 0, "eos_token_id": 1, "decoder_start_token_id": 0,
    "is_encoder_decoder": False, "use_cache": False,
}

VAE_16 = {**SD_VAE, "latent_channels": 16, "use_quant_conv": False, "use_post_quant_conv": False,
          "sample_size": 1024, "force_upcast": True}

FLOW_MATCH = {"_class_name": "FlowMatchEulerDiscreteScheduler", "num_train_timesteps": 1000, "shift": 3.0}

TINY_VAE = {"block_out_channels": [16, 32, 32, 32], "layers_per_block": 1, "norm_num_groups": 8, "sample_size": 128}

TINY_CLIP = {"hidden_size": 32, "intermediate_size": 37, "num_attention_heads": 4, "num_hidden_layers": 5,
             "projection_dim": 32, "vocab_size": 1000}

TINY_T5 = {**T5_XXL, "d_model": 64, "d_ff": 96, "d_kv": 16, "num_heads": 4, "num_layers": 2, "vocab_size": 512}


def sdxl_tiny() -> dict:
    files = sdxl()
    files["unet/config.json"] = {
        **files["unet/config.json"],
        "block_out_channels": [32, 64], "down_block_types": ["DownBlock2D", "CrossAttnDownBlock2D"],
        "up_block_types": ["CrossAttnUpBlock2D", "UpBlock2D"], "attention_head_dim": [2, 4],
        "transformer_layers_per_block": [1, 2], "cross_attention_dim": 64, "addition_time_embed_dim": 8,
        "projection_class_embeddings_input_dim": 6 * 8 + 32, "sample_size": 16, "norm_num_groups": 32,
    }
    files["vae/config.json"] = {**files["vae/config.json"], **TINY_VAE}
    files["text_encoder/config.json"] = {**CLIP_L, **TINY_CLIP}
    files["text_encoder_2/config.json"] = {**files["text_encoder_2/config.json"], **TINY_CLIP}
    return files


def sd3() -> dict:
    """Stable Diffusion 3 Medium: MMDiT transformer, CLIP-L and CLIP-G with projection, T5-XXL."""
    return {
        "model_index.json": {
            "_class_name": "StableDiffusion3Pipeline",
            "scheduler": ["diffusers", "FlowMatchEulerDiscreteScheduler"],
            "text_encoder": ["transformers", "CLIPTextModelWithProjection"],
            "text_encoder_2": ["transformers", "CLIPTextModelWithProjection"],
            "text_encoder_3": ["transformers", "T5EncoderModel"],
            "tokenizer": ["transformers", "CLIPTokenizer"],
            "tokenizer_2": ["transformers", "CLIPTokenizer"],
            "tokenizer_3": ["transformers", "T5TokenizerFast"],
            "transformer": ["diffusers", "SD3Transformer2DModel"],
            "vae": ["diffusers", "AutoencoderKL"],
            "image_encoder": [None, None], "feature_extractor": [None, None],
        },
        "transformer/config.json": {
            "_class_name": "SD3Transformer2DModel", "attention_head_dim": 64, "caption_projection_dim": 1536,
            "in_channels": 16, "joint_attention_dim": 4096, "num_attention_heads": 24, "num_layers": 24,
            "out_channels": 16, "patch_size": 2, "pooled_projection_dim": 2048, "pos_embed_max_size": 192,
            "sample_size": 128,
        },
        "vae/config.json": {**VAE_16, "scaling_factor": 1.5305, "shift_factor": 0.0609},
        "text_encoder/config.json": {**CLIP_L, "architectures": ["CLIPTextModelWithProjection"]},
        "text_encoder_2/config.json": CLIP_G,
        "text_encoder_3/config.json": T5_XXL,
        "scheduler/scheduler_config.json": FLOW_MATCH,
    }


def sd3_tiny() -> dict:
    files = sd3()
    files["transformer/config.json"] = {
        **files["transformer/config.json"], "attention_head_dim": 8, "caption_projection_dim": 32,
        "joint_attention_dim": 64, "num_attention_heads": 4, "num_layers": 2, "pooled_projection_dim": 64,
        "pos_embed_max_size": 16, "sample_size": 16,
    }
    files["vae/config.json"] = {**files["vae/config.json"], **TINY_VAE}
    files["text_encoder/config.json"] = {**files["text_encoder/config.json"], **TINY_CLIP}
    files["text_encoder_2/config.json"] = {**CLIP_G, **TINY_CLIP}
    files["text_encoder_3/config.json"] = TINY_T5
    return files


def flux() -> dict:
    """FLUX.1-dev: a 12B transformer of double- and single-stream blocks, CLIP-L and T5-XXL."""
    return {
        "model_index.json": {
            "_class_name": "FluxPipeline",
            "scheduler": ["diffusers", "FlowMatchEulerDiscreteScheduler"],
            "text_encoder": ["transformers", "CLIPTextModel"],
            "text_encoder_2": ["transformers", "T5EncoderModel"],
            "tokenizer": ["transformers", "CLIPTokenizer"],
            "tokenizer_2": ["transformers", "T5TokenizerFast"],
            "transformer": ["diffusers", "FluxTransformer2DModel"],
            "vae": ["diffusers", "AutoencoderKL"],
            "image_encoder": [None, None], "feature_extractor": [None, None],
        },
        "transformer/config.json": {
            "_class_name": "FluxTransformer2DModel", "attention_head_dim": 128, "axes_dims_rope": [16, 56, 56],
            "guidance_embeds": True, "in_channels": 64, "joint_attention_dim": 4096, "num_attention_heads": 24,
            "num_layers": 19, "num_single_layers": 38, "patch_size": 1, "pooled_projection_dim": 768,
        },
        "vae/config.json": {**VAE_16, "scaling_factor": 0.3611, "shift_factor": 0.1159},
        "text_encoder/config.json": CLIP_L,
        "text_encoder_2/config.json": T5_XXL,
        "scheduler/scheduler_config.json": {
            **FLOW_MATCH, "use_dynamic_shifting": True, "base_shift": 0.5, "max_shift": 1.15,
            "base_image_seq_len": 256, "max_image_seq_len": 4096,
        },
    }


def flux_tiny() -> dict:
    files = flux()
    files["transformer/config.json"] = {
        **files["transformer/config.json"], "attention_head_dim": 16, "axes_dims_rope": [4, 4, 8],
        "in_channels": 64, "joint_attention_dim": 64, "num_attention_heads": 2, "num_layers": 1,
        "num_single_layers": 1, "pooled_projection_dim": 32,
    }
    files["vae/config.json"] = {**files["vae/config.json"], **TINY_VAE}
    files["text_encoder/config.json"] = {**CLIP_L, **TINY_CLIP}
    files["text_encoder_2/config.json"] = TINY_T5
    return files


# --- the stand-in tokenizers --------------------------------------------------

WORDS = """a an the of in on at with and by for to from photo photograph picture painting portrait
astronaut riding horse mars cat dog city street night day sunset sunrise forest mountain river lake
sea ocean beach sky cloud clouds red blue green yellow white black golden dark light bright soft
highly detailed digital art oil canvas style by artist trending artstation cinematic lighting
sharp focus studio render octane unreal engine realistic hyper ultra high quality best masterpiece
old young man woman girl boy face eyes hair smile standing sitting walking flying under over
castle house tree flower flowers garden snow rain fire water stone glass metal wood robot dragon
space planet moon star stars galaxy landscape scene view close up wide angle lens camera film
blurry bad ugly low lowres worst""".split()


def tiny_clip_vocab(limit: int = 1000) -> tuple[dict[str, int], list[str]]:
    symbols = list(bytes_to_unicode().values())
    vocab_list = symbols + [s + "</w>" for s in symbols]
    merges: list[str] = []
    seen = set(vocab_list)
    budget = limit - len(vocab_list) - 2
    for word in WORDS:
        parts = list(word[:-1]) + [word[-1] + "</w>"]
        current = parts[0]
        for nxt in parts[1:]:
            merged = current + nxt
            if merged not in seen:
                if len(merges) >= budget:
                    break
                merges.append(f"{current} {nxt}")
                vocab_list.append(merged)
                seen.add(merged)
            current = merged
    vocab_list += ["<|startoftext|>", "<|endoftext|>"]
    return {tok: i for i, tok in enumerate(vocab_list)}, merges


def shared_tokenizer_files() -> dict:
    """The stand-in vocabulary every preset's CLIP tokenizer reads, written once."""
    vocab, merges = tiny_clip_vocab()
    return {
        "vocab.json": vocab,
        "merges.txt": "#version: 0.2 - ldm-inspector stand-in CLIP BPE vocabulary\n" + "\n".join(merges) + "\n",
    }


def tokenizer_files(pad_token: str = "<|endoftext|>", real_vocab: bool = False) -> dict:
    """One preset's CLIP tokenizer settings (its vocabulary is shared: ``shared_tokenizer_files``)."""
    vocab, _ = tiny_clip_vocab()
    return {
        "tokenizer/special_tokens_map.json": {
            "bos_token": "<|startoftext|>",
            "eos_token": "<|endoftext|>",
            "unk_token": "<|endoftext|>",
            "pad_token": pad_token,
        },
        "tokenizer/tokenizer_config.json": {
            "tokenizer_class": "CLIPTokenizer",
            "model_max_length": 77,
            "do_lower_case": True,
            "bos_token": "<|startoftext|>",
            "eos_token": "<|endoftext|>",
            "unk_token": "<|endoftext|>",
            "pad_token": pad_token,
            "ldm_inspector_note": f"stand-in vocabulary ({len(vocab):,} tokens), not the real CLIP vocabulary",
            **({"ldm_inspector_vocab": "clip"} if real_vocab else {}),
        },
    }


#: The real tokenizers pad with "!" where OpenCLIP trained the text encoder (SD 2.x, SDXL's second, SD3's second).
PAD_TOKENS = {("sd21", "tokenizer"): "!", ("sdxl", "tokenizer_2"): "!", ("tiny-sdxl", "tokenizer_2"): "!",
              ("sd3", "tokenizer_2"): "!", ("tiny-sd3", "tokenizer_2"): "!"}

#: T5 context lengths the pipelines use (SD3: max_sequence_length 256, Flux-dev: 512).
T5_LENGTHS = {"sd3": 256, "tiny-sd3": 256, "flux": 512, "tiny-flux": 512}


def t5_tokenizer(folder: Path, model_max_length: int) -> None:
    """A stand-in T5 tokenizer: a small Unigram vocabulary trained here on WORDS, saved as
    T5TokenizerFast files. Ids stay below any T5 vocabulary size; the real 32,128-piece
    SentencePiece model is not shipped."""
    from tokenizers import SentencePieceUnigramTokenizer
    from transformers import T5TokenizerFast

    corpus = [" ".join(WORDS[i:i + 12]) for i in range(0, len(WORDS), 3)] * 20
    tok = SentencePieceUnigramTokenizer()
    tok.train_from_iterator(corpus, vocab_size=400, special_tokens=["<pad>", "</s>", "<unk>"], unk_token="<unk>",
                            show_progress=False)
    fast = T5TokenizerFast(tokenizer_object=tok, pad_token="<pad>", eos_token="</s>", unk_token="<unk>",
                           extra_ids=0, model_max_length=model_max_length)
    fast.init_kwargs["ldm_inspector_note"] = (f"stand-in T5 vocabulary ({len(fast)} pieces), "
                                              "not the real T5 SentencePiece model")
    fast.save_pretrained(str(folder))


def write_files(root: Path, files: dict) -> None:
    for path, content in files.items():
        target = root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        text = content if isinstance(content, str) else json.dumps(content, indent=2, ensure_ascii=False) + "\n"
        target.write_text(text, encoding="utf-8")


def write_shared() -> None:
    root = OUT / SHARED_DIR
    shutil.rmtree(root, ignore_errors=True)
    write_files(root / CLIP_TOKENIZER_DIR, shared_tokenizer_files())


def write(name: str, files: dict) -> None:
    root = OUT / name
    shutil.rmtree(root, ignore_errors=True)
    index = files["model_index.json"]
    tokenizers = [key for key, (_, cls) in ((k, v) for k, v in index.items() if isinstance(v, list))
                  if cls == "CLIPTokenizer"]
    for tok in tokenizers:
        pad = PAD_TOKENS.get((name, tok), "<|endoftext|>")
        for path, content in tokenizer_files(pad, real_vocab=not name.startswith("tiny-")).items():
            files[path.replace("tokenizer/", f"{tok}/")] = content
    index["_diffusers_version"] = "0.42.1"
    write_files(root, files)
    for tok, (_, cls) in ((k, v) for k, v in index.items() if isinstance(v, list)):
        if cls == "T5TokenizerFast":
            t5_tokenizer(root / tok, T5_LENGTHS[name])


if __name__ == "__main__":
    builders = {"tiny-sd": tiny_sd, "sd15": sd15, "sd21": sd21, "sdxl": sdxl, "tiny-sdxl": sdxl_tiny,
                "sd3": sd3, "tiny-sd3": sd3_tiny, "flux": flux, "tiny-flux": flux_tiny}
    write_shared()
    print("wrote", OUT / SHARED_DIR / CLIP_TOKENIZER_DIR)
    for preset_name, build in builders.items():
        write(preset_name, build())
        print("wrote", OUT / preset_name)
