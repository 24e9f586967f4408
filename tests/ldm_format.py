"""Test helper: write a diffusers Stable Diffusion pipeline as an original (LDM) single-file checkpoint.

Real single-file checkpoints use the original CompVis key names; diffusers'
``from_single_file`` converts them. To test that path offline we need such a
file for the tiny pipeline, so this module maps diffusers names back to LDM
names (the inverse of diffusers' ``convert_ldm_*_checkpoint``). The test that
uses it checks the round trip against diffusers' own converter.
"""
from __future__ import annotations

import re

RESNET_TO_LDM = (("norm1", "in_layers.0"), ("conv1", "in_layers.2"), ("norm2", "out_layers.0"),
                 ("conv2", "out_layers.3"), ("time_emb_proj", "emb_layers.1"), ("conv_shortcut", "skip_connection"))
VAE_ATTN_TO_LDM = (("group_norm.", "norm."), ("to_q.", "q."), ("to_k.", "k."), ("to_v.", "v."),
                   ("to_out.0.", "proj_out."))


def _fixed(kind: str) -> dict[str, str]:
    from diffusers.loaders.single_file_utils import DIFFUSERS_TO_LDM_MAPPING

    return DIFFUSERS_TO_LDM_MAPPING[kind]["layers"] if kind == "unet" else DIFFUSERS_TO_LDM_MAPPING[kind]


def _resnet(rest: str) -> str:
    for new, old in RESNET_TO_LDM:
        rest = rest.replace(new, old, 1) if rest.startswith(new) else rest
    return rest


def unet_key(key: str, config: dict, has_attention: list[bool]) -> str:
    inv = _fixed("unet")
    if key in inv:
        return inv[key]
    per = config["layers_per_block"] + 1
    if m := re.match(r"down_blocks\.(\d+)\.resnets\.(\d+)\.(.*)", key):
        b, i, rest = int(m[1]), int(m[2]), m[3]
        return f"input_blocks.{1 + b * per + i}.0.{_resnet(rest)}"
    if m := re.match(r"down_blocks\.(\d+)\.attentions\.(\d+)\.(.*)", key):
        b, i, rest = int(m[1]), int(m[2]), m[3]
        return f"input_blocks.{1 + b * per + i}.1.{rest}"
    if m := re.match(r"down_blocks\.(\d+)\.downsamplers\.0\.conv\.(.*)", key):
        b = int(m[1])
        return f"input_blocks.{1 + b * per + per - 1}.0.op.{m[2]}"
    if m := re.match(r"mid_block\.resnets\.(\d+)\.(.*)", key):
        return f"middle_block.{2 * int(m[1])}.{_resnet(m[2])}"
    if m := re.match(r"mid_block\.attentions\.0\.(.*)", key):
        return f"middle_block.1.{m[1]}"
    if m := re.match(r"up_blocks\.(\d+)\.resnets\.(\d+)\.(.*)", key):
        b, i, rest = int(m[1]), int(m[2]), m[3]
        return f"output_blocks.{b * per + i}.0.{_resnet(rest)}"
    if m := re.match(r"up_blocks\.(\d+)\.attentions\.(\d+)\.(.*)", key):
        b, i, rest = int(m[1]), int(m[2]), m[3]
        return f"output_blocks.{b * per + i}.1.{rest}"
    if m := re.match(r"up_blocks\.(\d+)\.upsamplers\.0\.conv\.(.*)", key):
        b = int(m[1])
        slot = 2 if has_attention[b] else 1
        return f"output_blocks.{b * per + per - 1}.{slot}.conv.{m[2]}"
    raise KeyError(f"no LDM name for UNet key {key}")


def vae_key(key: str, n_up: int) -> str:
    inv = dict(_fixed("vae"))
    if key in inv:
        return inv[key]
    if m := re.match(r"encoder\.down_blocks\.(\d+)\.resnets\.(\d+)\.(.*)", key):
        return f"encoder.down.{m[1]}.block.{m[2]}.{m[3].replace('conv_shortcut', 'nin_shortcut')}"
    if m := re.match(r"encoder\.down_blocks\.(\d+)\.downsamplers\.0\.conv\.(.*)", key):
        return f"encoder.down.{m[1]}.downsample.conv.{m[2]}"
    if m := re.match(r"(encoder|decoder)\.mid_block\.resnets\.(\d+)\.(.*)", key):
        return f"{m[1]}.mid.block_{int(m[2]) + 1}.{m[3].replace('conv_shortcut', 'nin_shortcut')}"
    if m := re.match(r"(encoder|decoder)\.mid_block\.attentions\.0\.(.*)", key):
        rest = m[2]
        for new, old in VAE_ATTN_TO_LDM:
            rest = rest.replace(new, old)
        return f"{m[1]}.mid.attn_1.{rest}"
    if m := re.match(r"decoder\.up_blocks\.(\d+)\.resnets\.(\d+)\.(.*)", key):
        return f"decoder.up.{n_up - 1 - int(m[1])}.block.{m[2]}.{m[3].replace('conv_shortcut', 'nin_shortcut')}"
    if m := re.match(r"decoder\.up_blocks\.(\d+)\.upsamplers\.0\.conv\.(.*)", key):
        return f"decoder.up.{n_up - 1 - int(m[1])}.upsample.conv.{m[2]}"
    raise KeyError(f"no LDM name for VAE key {key}")


def to_ldm_state_dict(pipe) -> dict:
    """The pipeline's UNet, VAE and text encoder weights under original LDM key names."""
    unet_cfg = dict(pipe.unet.config)
    has_attention = [t.startswith("CrossAttn") for t in unet_cfg["up_block_types"]]
    out = {}
    for key, value in pipe.unet.state_dict().items():
        out["model.diffusion_model." + unet_key(key, unet_cfg, has_attention)] = value.contiguous()
    n_up = len(pipe.vae.config.up_block_types)
    for key, value in pipe.vae.state_dict().items():
        ldm = vae_key(key, n_up)
        if ".mid.attn_1." in ldm and ldm.endswith("weight") and value.dim() == 2:
            value = value[:, :, None, None]  # LDM stores these 1x1 projections as convolutions
        out["first_stage_model." + ldm] = value.contiguous()
    for key, value in pipe.text_encoder.state_dict().items():
        # Original checkpoints nest CLIP under text_model.; transformers 5 flattens it away.
        key = key if key.startswith("text_model.") else "text_model." + key
        out["cond_stage_model.transformer." + key] = value.contiguous()
    return out
