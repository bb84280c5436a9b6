"""A small inference API over SEEM for referring-image segmentation.

    segmenter = SEEMSegmenter.from_checkpoint(architecture, "seem_focalt_v0.pt")
    reference = segmenter.encode_frame(first_frame)                # backbone + pixel decoder once
    prompt = segmenter.encode_reference(reference, masks)          # (N, H, W) bool, one per object
    for frame in frames:
        result = segmenter.segment(frame, prompt)                  # result.logits: (N, H, W)

``architecture`` is what :func:`seem_core.model.build_model` takes: an official
SEEM YAML, the ``architecture:`` node of ``configs/model/*.yaml`` (or a file of
it), or a SEEMConfig; :func:`vos.models.load_segmenter` reads a whole model file.

Frames are RGB uint8 arrays at any size; they are resized, normalised and padded
as the official demo does, and results come back at the frame's own size.
Everything runs under ``torch.inference_mode``; on CUDA, ``precision`` can turn
on bf16 or fp16 autocast (the official demo runs fp16 on GPU).
"""
from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Mapping

import numpy as np
import torch
from torch import Tensor

from .checkpoint import load_checkpoint, resolve_checkpoint
from .config import SEEMConfig
from .decoder import mask_logits
from .model import SEEM, FrameFeatures, build_model
from .preprocess import FrameGeometry, check_frame, check_short_side, frame_geometry, logits_to_frame, \
    normalize_and_pad, resize_frame, resize_masks
from .visual_sampler import PointSampler, VisualPrompt

PRECISIONS = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


@dataclass
class EncodedFrame:
    """A frame after backbone and pixel decoder, reusable for prompts and decoding."""

    geometry: FrameGeometry
    features: FrameFeatures


@dataclass
class Segmentation:
    """Per-object output for one frame."""

    logits: Tensor  # (N, H, W) float32 mask logits at the frame's size (> 0 = object)
    scores: Tensor  # (N,) matching score of the chosen object query
    query_index: Tensor  # (N,) which of the object queries was chosen

    @property
    def masks(self) -> Tensor:
        return self.logits > 0


def check_precision(device: torch.device, precision: str) -> None:
    """Raise ValueError when ``precision`` is unknown or cannot run on ``device``."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    if PRECISIONS[precision] is not None and device.type != "cuda":
        raise ValueError(f"precision {precision!r} (autocast) is only supported on CUDA; use fp32 on {device}")


class SEEMSegmenter:
    """SEEM on single frames: encode a frame once, make referring prompts from masks, segment.

    It owns the device, the precision and the demo's preprocessing, so callers pass
    plain RGB frames and boolean masks and get logits back at the frame's size.
    """

    def __init__(self, model: SEEM, device: str | torch.device = "cpu", precision: str = "fp32",
                 short_side: int = 512):
        self.device = torch.device(device)
        check_precision(self.device, precision)
        check_short_side(short_side, model.cfg.max_input_side)
        self.model = model.to(self.device).eval()
        self.precision = precision
        self.short_side = short_side

    @classmethod
    def from_checkpoint(cls, config: str | Path | Mapping[str, Any] | SEEMConfig,
                        checkpoint: str | os.PathLike, *, strict: bool = True,
                        config_key: str = "model.checkpoint", **kwargs) -> "SEEMSegmenter":
        """Resolve the checkpoint first (fail fast, before building anything), then build and load."""
        path = resolve_checkpoint(checkpoint, config_key=config_key)
        model = build_model(config)
        load_checkpoint(model, path, strict=strict)
        return cls(model, **kwargs)

    @contextlib.contextmanager
    def _inference(self) -> Iterator[None]:
        dtype = PRECISIONS[self.precision]
        with torch.inference_mode(), torch.autocast(self.device.type, dtype=dtype, enabled=dtype is not None):
            yield

    def geometry(self, height: int, width: int) -> FrameGeometry:
        cfg = self.model.cfg
        return frame_geometry(height, width, self.short_side, cfg.size_divisibility, cfg.max_input_side)

    def preprocess(self, frame: np.ndarray) -> tuple[FrameGeometry, Tensor]:
        """Resize, normalise and pad one RGB uint8 frame: the backbone input (1, 3, Hp, Wp)."""
        frame = check_frame(frame)
        geometry = self.geometry(*frame.shape[:2])
        resized = resize_frame(frame, self.short_side, self.model.cfg.max_input_side)
        image = normalize_and_pad(resized, self.model.pixel_mean, self.model.pixel_std, geometry.padded, self.device)
        return geometry, image

    def encode_frame(self, frame: np.ndarray) -> EncodedFrame:
        """Backbone and pixel decoder on one frame."""
        geometry, image = self.preprocess(frame)
        with self._inference():
            return EncodedFrame(geometry, self.model.features(image))

    def _encoded(self, frame: np.ndarray | EncodedFrame) -> EncodedFrame:
        return frame if isinstance(frame, EncodedFrame) else self.encode_frame(frame)

    def encode_reference(self, frame: np.ndarray | EncodedFrame, masks: np.ndarray | Tensor,
                         generator: torch.Generator | None = None) -> VisualPrompt:
        """One referring-image prompt per mask: ``masks`` is (N, H, W) boolean at the frame's size."""
        encoded = self._encoded(frame)
        padded = resize_masks(masks, encoded.geometry).to(self.device)
        with self._inference():
            return self.model.decoder.encode_prompt(encoded.features.mask_features, encoded.features.levels,
                                                    padded, sampler=PointSampler(generator))

    def segment(self, frame: np.ndarray | EncodedFrame, prompt: VisualPrompt,
                to_original: bool = True) -> Segmentation:
        """Decode one frame against every prompt at once (the frame's features are shared)."""
        encoded = self._encoded(frame)
        features = encoded.features
        with self._inference():
            output = self.model.decoder(features.mask_features, features.levels, prompt)
            best = output.best_query
            rows = torch.arange(len(prompt), device=best.device)
            chosen = output.mask_embeddings[rows, best].unsqueeze(1)
            logits = mask_logits(features.mask_features, chosen)[:, 0]
            logits = logits_to_frame(logits, encoded.geometry, to_original=to_original)
            scores = output.match_scores[rows, best]
        return Segmentation(logits.float().cpu(), scores.float().cpu(), best.cpu())
