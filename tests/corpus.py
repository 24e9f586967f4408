"""A corpus of tiny diffusers pipelines, one per pipeline class, shaped as diffusers' own fast tests
shape them (the sizes of ``get_dummy_components`` in diffusers' ``tests/pipelines/*``), with seeded
random weights and tokenizers made from the files this package ships (no hub access).

Used by the tests (``tests/test_corpus.py``, built once per session through a fixture) and by
``bench/corpus_profile.py``. Each builder returns the pipeline; ``CORPUS`` maps a short name to
its builder, the size to run it at and the pipeline class it makes.

Tokenizers: CLIP models read the stand-in CLIP BPE vocabulary of ``tiny-sd``; T5, UMT5 and Gemma
models read the stand-in Unigram vocabulary of ``tiny-sd3`` (217 pieces), so every text encoder
here has at least that many embedding rows. Shapes and parameter counts do not depend on the
vocabulary's content.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

PRESETS = Path(__file__).resolve().parents[1] / "inspector" / "presets"
CLIP_TOKENIZER = PRESETS / "tiny-sd" / "tokenizer"
T5_TOKENIZER = PRESETS / "tiny-sd3" / "tokenizer_3"
T5_VOCAB = 256  # >= the stand-in Unigram vocabulary


def _seed(value: int = 0) -> None:
    import torch

    torch.manual_seed(value)


def clip_tokenizer():
    from transformers import CLIPTokenizer

    from inspector.sources.preset_files import tokenizer_file_kwargs

    return CLIPTokenizer.from_pretrained(CLIP_TOKENIZER, **tokenizer_file_kwargs(CLIPTokenizer, CLIP_TOKENIZER))


def t5_tokenizer():
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(T5_TOKENIZER)


def clip_text_encoder(hidden: int = 32, projection: bool = False, layers: int = 5):
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    _seed()
    config = CLIPTextConfig(bos_token_id=0, eos_token_id=2, hidden_size=hidden, intermediate_size=37,
                            layer_norm_eps=1e-05, num_attention_heads=4, num_hidden_layers=layers, pad_token_id=1,
                            vocab_size=1000, hidden_act="gelu", projection_dim=hidden)
    return (CLIPTextModelWithProjection if projection else CLIPTextModel)(config).eval()


def t5_encoder(d_model: int = 32):
    from transformers import T5Config, T5EncoderModel

    _seed()
    config = T5Config(vocab_size=T5_VOCAB, d_model=d_model, d_kv=8, d_ff=37, num_layers=2, num_heads=4,
                      relative_attention_num_buckets=8, decoder_start_token_id=0, pad_token_id=0, eos_token_id=1)
    return T5EncoderModel(config).eval()


def umt5_encoder(d_model: int = 32):
    from transformers import UMT5Config, UMT5EncoderModel

    _seed()
    config = UMT5Config(vocab_size=T5_VOCAB, d_model=d_model, d_kv=8, d_ff=37, num_layers=2, num_heads=4,
                        relative_attention_num_buckets=8, decoder_start_token_id=0, pad_token_id=0, eos_token_id=1)
    return UMT5EncoderModel(config).eval()


def sd_unet(in_channels: int = 4, **extra: Any):
    from diffusers import UNet2DConditionModel

    _seed()
    return UNet2DConditionModel(
        block_out_channels=(32, 64), layers_per_block=2, sample_size=32, in_channels=in_channels, out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"), up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=32, norm_num_groups=32, **extra).eval()


def sdxl_unet():
    from diffusers import UNet2DConditionModel

    _seed()
    return UNet2DConditionModel(
        block_out_channels=(32, 64), layers_per_block=2, sample_size=32, in_channels=4, out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"), up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        attention_head_dim=(2, 4), use_linear_projection=True, addition_embed_type="text_time",
        addition_time_embed_dim=8, transformer_layers_per_block=(1, 2), projection_class_embeddings_input_dim=80,
        cross_attention_dim=64, norm_num_groups=1).eval()


def sd_vae(latent_channels: int = 4, **extra: Any):
    from diffusers import AutoencoderKL

    _seed()
    return AutoencoderKL(block_out_channels=[32, 64], in_channels=3, out_channels=3,
                         down_block_types=["DownEncoderBlock2D", "DownEncoderBlock2D"],
                         up_block_types=["UpDecoderBlock2D", "UpDecoderBlock2D"], latent_channels=latent_channels,
                         **extra).eval()


def _sd_components(unet=None):
    from diffusers import DDIMScheduler

    return {"unet": unet or sd_unet(), "vae": sd_vae(), "text_encoder": clip_text_encoder(),
            "tokenizer": clip_tokenizer(),
            "scheduler": DDIMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                                       clip_sample=False, set_alpha_to_one=False, steps_offset=1),
            "safety_checker": None, "feature_extractor": None, "image_encoder": None}


def build_sd():
    from diffusers import StableDiffusionPipeline

    return StableDiffusionPipeline(**_sd_components(), requires_safety_checker=False)


def build_sd_img2img():
    from diffusers import StableDiffusionImg2ImgPipeline

    return StableDiffusionImg2ImgPipeline(**_sd_components(), requires_safety_checker=False)


def build_sd_inpaint():
    from diffusers import StableDiffusionInpaintPipeline

    # the inpainting UNet takes latents, the mask and the masked image's latents: 4 + 1 + 4 channels
    return StableDiffusionInpaintPipeline(**_sd_components(sd_unet(in_channels=9)), requires_safety_checker=False)


def build_lcm():
    from diffusers import LatentConsistencyModelPipeline, LCMScheduler

    components = _sd_components(sd_unet(time_cond_proj_dim=32))
    components["scheduler"] = LCMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                                           clip_sample=False, set_alpha_to_one=False)
    return LatentConsistencyModelPipeline(**components, requires_safety_checker=False)


def _sdxl_components():
    from diffusers import EulerDiscreteScheduler

    _seed()
    return {
        "unet": sdxl_unet(),
        "scheduler": EulerDiscreteScheduler(beta_start=0.00085, beta_end=0.012, steps_offset=1,
                                            beta_schedule="scaled_linear", timestep_spacing="leading"),
        "vae": sd_vae(sample_size=128),
        "text_encoder": clip_text_encoder(),
        "text_encoder_2": clip_text_encoder(projection=True),
        "tokenizer": clip_tokenizer(), "tokenizer_2": clip_tokenizer(),
        "image_encoder": None, "feature_extractor": None,
    }


def build_sdxl():
    from diffusers import StableDiffusionXLPipeline

    return StableDiffusionXLPipeline(**_sdxl_components())


def controlnet_for(unet_kind: str):
    from diffusers import ControlNetModel

    _seed()
    if unet_kind == "sdxl":
        return ControlNetModel(
            block_out_channels=(32, 64), layers_per_block=2, in_channels=4,
            down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"), conditioning_embedding_out_channels=(16, 32),
            attention_head_dim=(2, 4), use_linear_projection=True, addition_embed_type="text_time",
            addition_time_embed_dim=8, transformer_layers_per_block=(1, 2),
            projection_class_embeddings_input_dim=80, cross_attention_dim=64, norm_num_groups=1).eval()
    return ControlNetModel(block_out_channels=(32, 64), layers_per_block=2, in_channels=4,
                           down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"), cross_attention_dim=32,
                           conditioning_embedding_out_channels=(16, 32), norm_num_groups=32).eval()


def build_controlnet():
    from diffusers import StableDiffusionControlNetPipeline

    return StableDiffusionControlNetPipeline(**_sd_components(), controlnet=controlnet_for("sd"),
                                             requires_safety_checker=False)


def build_sdxl_controlnet():
    from diffusers import StableDiffusionXLControlNetPipeline

    return StableDiffusionXLControlNetPipeline(**_sdxl_components(), controlnet=controlnet_for("sdxl"))


def build_animatediff():
    from diffusers import AnimateDiffPipeline, DDIMScheduler, MotionAdapter, UNet2DConditionModel

    _seed()
    unet = UNet2DConditionModel(block_out_channels=(32, 64), layers_per_block=2, sample_size=8, in_channels=4,
                                out_channels=4, down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
                                up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"), cross_attention_dim=32,
                                norm_num_groups=2).eval()
    _seed()
    adapter = MotionAdapter(block_out_channels=(32, 64), motion_layers_per_block=2, motion_norm_num_groups=2,
                            motion_num_attention_heads=4).eval()
    scheduler = DDIMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="linear", clip_sample=False)
    return AnimateDiffPipeline(unet=unet, scheduler=scheduler, vae=sd_vae(), motion_adapter=adapter,
                               text_encoder=clip_text_encoder(), tokenizer=clip_tokenizer(),
                               feature_extractor=None, image_encoder=None)


def build_sd3():
    from diffusers import FlowMatchEulerDiscreteScheduler, SD3Transformer2DModel, StableDiffusion3Pipeline

    _seed()
    transformer = SD3Transformer2DModel(sample_size=32, patch_size=1, in_channels=4, num_layers=1,
                                        attention_head_dim=8, num_attention_heads=4, caption_projection_dim=32,
                                        joint_attention_dim=32, pooled_projection_dim=64, out_channels=4).eval()
    vae = sd_vae(sample_size=32, shift_factor=0.0609, scaling_factor=1.5035, use_quant_conv=False,
                 use_post_quant_conv=False)
    return StableDiffusion3Pipeline(
        transformer=transformer, scheduler=FlowMatchEulerDiscreteScheduler(), vae=vae,
        text_encoder=clip_text_encoder(projection=True), text_encoder_2=clip_text_encoder(projection=True),
        text_encoder_3=t5_encoder(), tokenizer=clip_tokenizer(), tokenizer_2=clip_tokenizer(),
        tokenizer_3=t5_tokenizer(), image_encoder=None, feature_extractor=None)


def build_flux():
    from diffusers import FlowMatchEulerDiscreteScheduler, FluxPipeline, FluxTransformer2DModel

    _seed()
    transformer = FluxTransformer2DModel(patch_size=1, in_channels=4, num_layers=1, num_single_layers=1,
                                         attention_head_dim=16, num_attention_heads=2, joint_attention_dim=32,
                                         pooled_projection_dim=32, axes_dims_rope=[4, 4, 8]).eval()
    _seed()
    from diffusers import AutoencoderKL

    vae = AutoencoderKL(sample_size=32, in_channels=3, out_channels=3, block_out_channels=(4,), layers_per_block=1,
                        latent_channels=1, norm_num_groups=1, use_quant_conv=False, use_post_quant_conv=False,
                        shift_factor=0.0609, scaling_factor=1.5035).eval()
    return FluxPipeline(scheduler=FlowMatchEulerDiscreteScheduler(), vae=vae, text_encoder=clip_text_encoder(),
                        tokenizer=clip_tokenizer(), text_encoder_2=t5_encoder(), tokenizer_2=t5_tokenizer(),
                        transformer=transformer, image_encoder=None, feature_extractor=None)


def build_pixart():
    from diffusers import DDIMScheduler, PixArtAlphaPipeline, PixArtTransformer2DModel

    _seed()
    transformer = PixArtTransformer2DModel(sample_size=8, num_layers=2, patch_size=2, attention_head_dim=8,
                                           num_attention_heads=3, caption_channels=32, in_channels=4,
                                           cross_attention_dim=24, out_channels=8, attention_bias=True,
                                           activation_fn="gelu-approximate", num_embeds_ada_norm=1000,
                                           norm_type="ada_norm_single", norm_elementwise_affine=False,
                                           norm_eps=1e-6).eval()
    return PixArtAlphaPipeline(transformer=transformer, vae=sd_vae(), scheduler=DDIMScheduler(),
                               text_encoder=t5_encoder(), tokenizer=t5_tokenizer())


def build_auraflow():
    from diffusers import AuraFlowPipeline, AuraFlowTransformer2DModel, FlowMatchEulerDiscreteScheduler

    _seed()
    transformer = AuraFlowTransformer2DModel(sample_size=32, patch_size=2, in_channels=4, num_mmdit_layers=1,
                                             num_single_dit_layers=1, attention_head_dim=8, num_attention_heads=4,
                                             caption_projection_dim=32, joint_attention_dim=32, out_channels=4,
                                             pos_embed_max_size=256).eval()
    return AuraFlowPipeline(tokenizer=t5_tokenizer(), text_encoder=umt5_encoder(), vae=sd_vae(),
                            transformer=transformer, scheduler=FlowMatchEulerDiscreteScheduler())


def build_sana():
    from diffusers import AutoencoderDC, FlowMatchEulerDiscreteScheduler, SanaPipeline, SanaTransformer2DModel
    from transformers import Gemma2Config, Gemma2Model

    _seed()
    transformer = SanaTransformer2DModel(patch_size=1, in_channels=4, out_channels=4, num_layers=1,
                                         num_attention_heads=2, attention_head_dim=4, num_cross_attention_heads=2,
                                         cross_attention_head_dim=4, cross_attention_dim=8, caption_channels=8,
                                         sample_size=32).eval()
    _seed()
    vae = AutoencoderDC(in_channels=3, latent_channels=4, attention_head_dim=2,
                        encoder_block_types=("ResBlock", "EfficientViTBlock"),
                        decoder_block_types=("ResBlock", "EfficientViTBlock"),
                        encoder_block_out_channels=(8, 8), decoder_block_out_channels=(8, 8),
                        encoder_qkv_multiscales=((), (5,)), decoder_qkv_multiscales=((), (5,)),
                        encoder_layers_per_block=(1, 1), decoder_layers_per_block=[1, 1],
                        downsample_block_type="conv", upsample_block_type="interpolate",
                        decoder_norm_types="rms_norm", decoder_act_fns="silu", scaling_factor=0.41407).eval()
    _seed()
    text_encoder = Gemma2Model(Gemma2Config(head_dim=16, hidden_size=8, intermediate_size=64,
                                            max_position_embeddings=8192, num_attention_heads=2, num_hidden_layers=1,
                                            num_key_value_heads=2, vocab_size=T5_VOCAB,
                                            attn_implementation="eager")).eval()
    return SanaPipeline(tokenizer=t5_tokenizer(), text_encoder=text_encoder, vae=vae, transformer=transformer,
                        scheduler=FlowMatchEulerDiscreteScheduler(shift=7.0))


def build_lumina2():
    from diffusers import AutoencoderKL, FlowMatchEulerDiscreteScheduler, Lumina2Pipeline, Lumina2Transformer2DModel
    from transformers import GemmaConfig, GemmaModel

    _seed()
    transformer = Lumina2Transformer2DModel(sample_size=4, patch_size=2, in_channels=4, hidden_size=8, num_layers=2,
                                            num_attention_heads=1, num_kv_heads=1, multiple_of=16,
                                            ffn_dim_multiplier=None, norm_eps=1e-5, scaling_factor=1.0,
                                            axes_dim_rope=[4, 2, 2], cap_feat_dim=8).eval()
    _seed()
    vae = AutoencoderKL(sample_size=32, in_channels=3, out_channels=3, block_out_channels=(4,), layers_per_block=1,
                        latent_channels=4, norm_num_groups=1, use_quant_conv=False, use_post_quant_conv=False,
                        shift_factor=0.0609, scaling_factor=1.5035).eval()
    _seed()
    text_encoder = GemmaModel(GemmaConfig(head_dim=2, hidden_size=8, intermediate_size=37, num_attention_heads=4,
                                          num_hidden_layers=2, num_key_value_heads=4, vocab_size=T5_VOCAB)).eval()
    return Lumina2Pipeline(transformer=transformer, scheduler=FlowMatchEulerDiscreteScheduler(), vae=vae,
                           text_encoder=text_encoder, tokenizer=t5_tokenizer())


def build_wan():
    from diffusers import AutoencoderKLWan, FlowMatchEulerDiscreteScheduler, WanPipeline, WanTransformer3DModel

    _seed()
    vae = AutoencoderKLWan(base_dim=3, z_dim=16, dim_mult=[1, 1, 1, 1], num_res_blocks=1,
                           temperal_downsample=[False, True, True]).eval()
    _seed()
    transformer = WanTransformer3DModel(patch_size=(1, 2, 2), num_attention_heads=2, attention_head_dim=12,
                                        in_channels=16, out_channels=16, text_dim=32, freq_dim=256, ffn_dim=32,
                                        num_layers=2, cross_attn_norm=True, qk_norm="rms_norm_across_heads",
                                        rope_max_seq_len=32).eval()
    return WanPipeline(tokenizer=t5_tokenizer(), text_encoder=umt5_encoder(), vae=vae, transformer=transformer,
                       scheduler=FlowMatchEulerDiscreteScheduler(shift=7.0), transformer_2=None)


def build_kandinsky22():
    from diffusers import DDIMScheduler, KandinskyV22Pipeline, UNet2DConditionModel, VQModel

    _seed()
    unet = UNet2DConditionModel(in_channels=4, out_channels=8, addition_embed_type="image", down_block_types=(
        "ResnetDownsampleBlock2D", "SimpleCrossAttnDownBlock2D"), up_block_types=(
        "SimpleCrossAttnUpBlock2D", "ResnetUpsampleBlock2D"), mid_block_type="UNetMidBlock2DSimpleCrossAttn",
        block_out_channels=(32, 64), layers_per_block=1, encoder_hid_dim=32, encoder_hid_dim_type="image_proj",
        cross_attention_dim=100, attention_head_dim=4, resnet_time_scale_shift="scale_shift",
        class_embed_type=None).eval()
    _seed()
    movq = VQModel(block_out_channels=[32, 64], down_block_types=["DownEncoderBlock2D", "AttnDownEncoderBlock2D"],
                   in_channels=3, latent_channels=4, layers_per_block=1, norm_num_groups=8, norm_type="spatial",
                   num_vq_embeddings=12, out_channels=3, up_block_types=["AttnUpDecoderBlock2D", "UpDecoderBlock2D"],
                   vq_embed_dim=4).eval()
    scheduler = DDIMScheduler(num_train_timesteps=1000, beta_schedule="linear", beta_start=0.00085,
                              beta_end=0.012, clip_sample=False, set_alpha_to_one=False, steps_offset=1,
                              prediction_type="epsilon", thresholding=False)
    return KandinskyV22Pipeline(unet=unet, scheduler=scheduler, movq=movq)


def build_kandinsky22_prior():
    from diffusers import KandinskyV22PriorPipeline, PriorTransformer, UnCLIPScheduler
    from transformers import CLIPImageProcessor, CLIPVisionConfig, CLIPVisionModelWithProjection

    _seed()
    prior = PriorTransformer(num_attention_heads=2, attention_head_dim=12, embedding_dim=32, num_layers=1).eval()
    import torch

    with torch.no_grad():
        prior.clip_std.fill_(1.0)  # as diffusers' test does: a non-zero std
    _seed()
    image_encoder = CLIPVisionModelWithProjection(CLIPVisionConfig(
        hidden_size=32, image_size=224, projection_dim=32, intermediate_size=37, num_attention_heads=4,
        num_channels=3, num_hidden_layers=5, patch_size=14)).eval()
    image_processor = CLIPImageProcessor(crop_size=224, do_center_crop=True, do_normalize=True, do_resize=True,
                                         image_mean=[0.48145466, 0.4578275, 0.40821073],
                                         image_std=[0.26862954, 0.26130258, 0.27577711], resample=3, size=224)
    scheduler = UnCLIPScheduler(variance_type="fixed_small_log", prediction_type="sample", num_train_timesteps=1000,
                                clip_sample=True, clip_sample_range=10.0)
    return KandinskyV22PriorPipeline(prior=prior, image_encoder=image_encoder,
                                     text_encoder=clip_text_encoder(projection=True), tokenizer=clip_tokenizer(),
                                     scheduler=scheduler, image_processor=image_processor)


def build_stable_cascade_prior():
    from diffusers import DDPMWuerstchenScheduler, StableCascadePriorPipeline
    from diffusers.models import StableCascadeUNet

    _seed()
    prior = StableCascadeUNet(conditioning_dim=128, block_out_channels=(128, 128), num_attention_heads=(2, 2),
                              down_num_layers_per_block=(1, 1), up_num_layers_per_block=(1, 1),
                              clip_image_in_channels=768, switch_level=(False,), clip_text_in_channels=32,
                              clip_text_pooled_in_channels=32, dropout=(0.1, 0.1)).eval()
    return StableCascadePriorPipeline(prior=prior, text_encoder=clip_text_encoder(projection=True),
                                      tokenizer=clip_tokenizer(), scheduler=DDPMWuerstchenScheduler(),
                                      feature_extractor=None, image_encoder=None)


@dataclass(frozen=True)
class Entry:
    build: Callable[[], Any]
    pipeline_class: str
    height: int = 32
    width: int = 32


CORPUS: dict[str, Entry] = {
    "sd": Entry(build_sd, "StableDiffusionPipeline"),
    "sd-img2img": Entry(build_sd_img2img, "StableDiffusionImg2ImgPipeline"),
    "sd-inpaint": Entry(build_sd_inpaint, "StableDiffusionInpaintPipeline"),
    "sdxl": Entry(build_sdxl, "StableDiffusionXLPipeline", 64, 64),
    "sd3": Entry(build_sd3, "StableDiffusion3Pipeline"),
    "flux": Entry(build_flux, "FluxPipeline"),
    "pixart": Entry(build_pixart, "PixArtAlphaPipeline"),
    "controlnet": Entry(build_controlnet, "StableDiffusionControlNetPipeline", 64, 64),
    "sdxl-controlnet": Entry(build_sdxl_controlnet, "StableDiffusionXLControlNetPipeline", 64, 64),
    "lcm": Entry(build_lcm, "LatentConsistencyModelPipeline"),
    "animatediff": Entry(build_animatediff, "AnimateDiffPipeline"),
    "kandinsky22": Entry(build_kandinsky22, "KandinskyV22Pipeline", 64, 64),
    "kandinsky22-prior": Entry(build_kandinsky22_prior, "KandinskyV22PriorPipeline"),
    "wan": Entry(build_wan, "WanPipeline", 16, 16),
    "sana": Entry(build_sana, "SanaPipeline"),
    "auraflow": Entry(build_auraflow, "AuraFlowPipeline"),
    "lumina2": Entry(build_lumina2, "Lumina2Pipeline"),
    "stable-cascade-prior": Entry(build_stable_cascade_prior, "StableCascadePriorPipeline", 128, 128),
}


def build(name: str) -> Any:
    pipe = CORPUS[name].build()
    pipe.set_progress_bar_config(disable=True)
    return pipe
