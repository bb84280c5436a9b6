"""The whole SEEM model: backbone, pixel decoder, decoder with visual sampler, language encoder.

Module names mirror the official ``GeneralizedSEEM`` so that released
checkpoints load strictly: ``backbone.*``, ``sem_seg_head.pixel_decoder.*``,
``sem_seg_head.predictor.*`` (with the language encoder at
``sem_seg_head.predictor.lang_encoder.*``) and the ``dilation_kernel`` buffer.

One set of modules serves every official decoder: ``seem_demo``, ``seem_v0``
and ``seem_v1`` checkpoints have the same keys (v0/v1 add the training buffer
``criterion.empty_weight``, which loading skips). ``decoder_name`` decides only
which algorithm spatial prompts (clicks, strokes, boxes) run, see
:attr:`SEEM.uses_spatial_queries`; referring images and texts run the demo
forward for every checkpoint (the official v1 decoder's cross-image branch
crashes, golden README 7.5, and only the demo's text path is recorded).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import torch
from torch import Tensor, nn

from .config import ConfigError, SEEMConfig, load_config
from .decoder import LevelFeatures, SEEMDecoder
from .deform_pixel_decoder import DeformablePixelDecoder
from .focalnet import FocalNet
from .language import LanguageEncoder
from .pixel_decoder import TransformerEncoderPixelDecoder
from .vit import SAMViT


@dataclass
class FrameFeatures:
    """Everything the decoder reads from one frame (batch 1): computed once, shared by all objects."""

    mask_features: Tensor  # (1, mask_dim, Hp/4, Wp/4)
    levels: list[LevelFeatures]  # coarse -> fine


def build_backbone(cfg: SEEMConfig) -> nn.Module:
    """The backbone ``cfg.backbone_name`` names; it maps images to ``{"res2": ..., ...}``."""
    return SAMViT(cfg.backbone) if cfg.backbone_name == "vit" else FocalNet(cfg.backbone)


def build_pixel_decoder(cfg: SEEMConfig, in_channels: dict[str, int]) -> nn.Module:
    """The pixel decoder ``cfg.pixel_decoder_name`` names, reading backbone maps of ``in_channels``."""
    if cfg.pixel_decoder_name == "transformer_encoder_deform":
        return DeformablePixelDecoder(cfg.pixel_decoder, in_channels)
    return TransformerEncoderPixelDecoder(cfg.pixel_decoder, in_channels)


class SegmentationHead(nn.Module):
    """Container named like the official ``sem_seg_head``: pixel decoder + SEEM decoder.

    ``predictor`` is the official checkpoints' name for the decoder; it is kept for
    strict loading and used nowhere else (the code calls it :attr:`SEEM.decoder`).
    """

    def __init__(self, pixel_decoder: nn.Module, decoder: SEEMDecoder):
        super().__init__()
        self.pixel_decoder = pixel_decoder
        self.predictor = decoder


class SEEM(nn.Module):
    def __init__(self, cfg: SEEMConfig):
        super().__init__()
        self.cfg = cfg
        self.backbone = build_backbone(cfg)
        pixel_decoder = build_pixel_decoder(cfg, self.backbone.out_channels)
        language = LanguageEncoder(cfg.text, cfg.dim_proj)
        decoder = SEEMDecoder(cfg.decoder, in_channels=cfg.pixel_decoder.conv_dim,
                              mask_dim=cfg.pixel_decoder.mask_dim, dim_proj=cfg.dim_proj,
                              lang_encoder=language)
        self.sem_seg_head = SegmentationHead(pixel_decoder, decoder)
        self.register_buffer("pixel_mean", torch.tensor(cfg.pixel_mean, dtype=torch.float32), persistent=False)
        self.register_buffer("pixel_std", torch.tensor(cfg.pixel_std, dtype=torch.float32), persistent=False)
        # The 3x3 ones kernel that dilates a clicked pixel into a click mask (official v1 click
        # simulation); it is in every released checkpoint.
        self.register_buffer("dilation_kernel", torch.ones(1, 1, 3, 3))

    @property
    def decoder(self) -> SEEMDecoder:
        return self.sem_seg_head.predictor

    @property
    def language(self) -> LanguageEncoder:
        return self.sem_seg_head.predictor.lang_encoder

    @property
    def uses_spatial_queries(self) -> bool:
        """Whether spatial prompts run the v1 interactive call instead of the demo's stroke tokens.

        ``seem_v1``: the official v1 decoder's ``evaluate_interactive_single``
        (spatial queries copied from object queries; the mask comes from the
        best spatial query), the path v1 weights were trained for. ``seem_demo``
        and ``seem_v0``: strokes enter the demo forward as spatial tokens and the
        stroke rule picks an object query (``evaluate_demo``), which is what the
        official demo runs ``seem_focal?_v0.pt`` with. The v0 decoder's own
        spatial path (all 101 object queries duplicated as spatial queries,
        its own attention table) has no golden recording, so v0 checkpoints
        take the recorded demo path, as in the official demo.
        """
        return self.cfg.decoder_name == "seem_v1"

    def check_text_prompts(self) -> None:
        """Refuse text prompts where SEEM's text path cannot work: grounding tokens have
        ``MODEL.DIM_PROJ`` channels and enter the decoder unprojected (the official code then
        fails with a shape error)."""
        dim_proj, hidden = self.cfg.dim_proj, self.cfg.decoder.hidden_dim
        if dim_proj != hidden:
            raise ConfigError(
                f"MODEL.DIM_PROJ = {dim_proj} differs from MODEL.DECODER.HIDDEN_DIM = {hidden}: SEEM feeds "
                "text tokens to the decoder unprojected, so this model cannot take text prompts")

    def features(self, images: Tensor) -> FrameFeatures:
        """Backbone + pixel decoder + decoder inputs for normalised, padded images (1, 3, Hp, Wp)."""
        mask_features, multi_scale = self.sem_seg_head.pixel_decoder(self.backbone(images))
        return FrameFeatures(mask_features, self.decoder.level_features(multi_scale))


def build_model(config: str | Path | Mapping[str, Any] | SEEMConfig) -> SEEM:
    """Build SEEM from an official SEEM YAML path, the golden ``config.yaml``, a dict or a SEEMConfig.

    The weights are left as initialised; load a checkpoint with
    :func:`seem_core.checkpoint.load_checkpoint`. Built inside
    ``torch.device("meta")`` it costs no memory (to inspect keys and shapes).
    """
    return SEEM(load_config(config)).eval()
