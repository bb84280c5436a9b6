"""The whole SEEM model: backbone, pixel decoder, decoder with visual sampler, language encoder.

Module names mirror the official ``GeneralizedSEEM`` so that released
checkpoints load strictly: ``backbone.*``, ``sem_seg_head.pixel_decoder.*``,
``sem_seg_head.predictor.*`` (with the language encoder at
``sem_seg_head.predictor.lang_encoder.*``) and the ``dilation_kernel`` buffer.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import torch
from torch import Tensor, nn

from .config import SEEMConfig, load_config
from .decoder import LevelFeatures, SEEMDecoder
from .deform_pixel_decoder import DeformablePixelDecoder
from .focalnet import FocalNet
from .language import LanguageEncoder
from .pixel_decoder import TransformerEncoderPixelDecoder
from .vit import SAMViT

log = logging.getLogger(__name__)


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
        # The official model keeps a 3x3 ones kernel for its simulated interactive clicks; it is
        # in every released checkpoint, so it stays here (unused) for strict loading.
        self.register_buffer("dilation_kernel", torch.ones(1, 1, 3, 3))

    @property
    def decoder(self) -> SEEMDecoder:
        return self.sem_seg_head.predictor

    @property
    def language(self) -> LanguageEncoder:
        return self.sem_seg_head.predictor.lang_encoder

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
    cfg = load_config(config)
    if cfg.decoder_name != "seem_demo":
        log.info("decoder %s: building the demo decoder, which the official video path uses; "
                 "%s checkpoints have the same keys and load into it", cfg.decoder_name, cfg.decoder_name)
    return SEEM(cfg).eval()
