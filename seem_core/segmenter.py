"""A small inference API over SEEM: referring images, clicks/strokes/boxes and texts on single frames.

    segmenter = SEEMSegmenter.from_checkpoint(architecture, "seem_focalt_v0.pt")
    reference = segmenter.encode_frame(first_frame)                # backbone + pixel decoder once
    prompt = segmenter.encode_reference(reference, masks)          # (N, H, W) bool, one per object
    for frame in frames:
        result = segmenter.segment(frame, prompt)                  # result.logits: (N, H, W)

Any combination of prompts per object, on any frame:

    text = segmenter.encode_text(["the black swan"])                # once per expression
    clicked = spatial_prompts.clicks([(120, 80)], [True], frame.shape[:2])
    result = segmenter.segment_objects(frame, [ObjectPrompt(reference=prompt.select([0]), spatial=clicked),
                                               ObjectPrompt(text=text)])
    result.rules                                                   # ("spatial", "text")

``architecture`` is what :func:`seem_core.model.build_model` takes: an official
SEEM YAML, the ``architecture:`` node of ``configs/model/*.yaml`` (or a file of
it), or a SEEMConfig; :func:`vos.models.load_segmenter` reads a whole model file.

Frames are RGB uint8 arrays at any size; they are resized, normalised and padded
as the official demo does, and results come back at the frame's own size.
Everything runs under ``torch.inference_mode``; ``precision`` can turn on bf16
autocast (CPU or CUDA) or fp16 (CUDA; the official demo runs fp16 on GPU). In float32
on the CPU the pixel decoder's large 3x3 convolutions run by Winograd
(:mod:`seem_core.cpu_conv`; ``winograd=False``: oneDNN's direct algorithm).
"""
from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

import numpy as np
import torch
from torch import Tensor

from .checkpoint import load_checkpoint, resolve_checkpoint
from .config import SEEMConfig
from .cpu_conv import use_winograd
from .decoder import mask_logits
from .language import TextPrompt
from .model import SEEM, FrameFeatures, build_model
from .preprocess import FrameGeometry, check_frame, check_short_side, frame_geometry, logits_to_frame, \
    normalize_and_pad, resize_frame, resize_masks
from .query_selection import REFERENCE, SPATIAL, TEXT, choose_rule, embedding_scores, text_scores
from .spatial_prompts import PromptError, SpatialPrompt, model_masks
from .visual_sampler import PointSampler, SortedPointSampler, VisualPrompt

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
    scores: Tensor  # (N,) the choosing rule's score of the chosen query
    query_index: Tensor  # (N,) the chosen object query (v1 spatial path: the chosen spatial query)
    rules: tuple[str, ...] = ()  # per object, the rule that chose it: "spatial", "reference" or "text"

    @property
    def masks(self) -> Tensor:
        return self.logits > 0


def check_precision(device: torch.device, precision: str) -> None:
    """Raise ValueError when ``precision`` is unknown or cannot run on ``device``."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    if precision == "fp16" and device.type != "cuda":
        raise ValueError(f"precision 'fp16' (autocast) is only supported on CUDA; use fp32 or bf16 on {device}")


@dataclass
class ObjectPrompt:
    """What one object is prompted with on the frame being segmented: any non-empty combination.

    ``reference``: one referring-image prompt (a row of :meth:`SEEMSegmenter.encode_reference`,
    usually from an earlier frame); ``spatial``: its clicks/strokes/boxes on *this* frame
    (:mod:`seem_core.spatial_prompts`); ``text``: one row of :meth:`SEEMSegmenter.encode_text`.
    An object with several references takes one ObjectPrompt per reference (the caller combines
    the results, e.g. by averaging logits).
    """

    reference: VisualPrompt | None = None
    spatial: SpatialPrompt | None = None
    text: TextPrompt | None = None

    def kinds(self) -> tuple[bool, bool, bool]:
        return self.reference is not None, self.spatial is not None, self.text is not None


class SEEMSegmenter:
    """SEEM on single frames: encode a frame once, make prompts (masks, clicks, texts), segment.

    It owns the device, the precision and the demo's preprocessing, so callers pass
    plain RGB frames, masks, clicks and texts and get logits back at the frame's size.
    """

    def __init__(self, model: SEEM, device: str | torch.device = "cpu", precision: str = "fp32",
                 short_side: int = 512, winograd: bool = True):
        self.device = torch.device(device)
        check_precision(self.device, precision)
        check_short_side(short_side, model.cfg.max_input_side)
        self.model = model.to(self.device).eval()
        self.precision = precision
        self.short_side = short_side
        self.winograd = winograd

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
        with torch.inference_mode(), torch.autocast(self.device.type, dtype=dtype, enabled=dtype is not None), \
                use_winograd(self.winograd):
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

    def encode_text(self, texts: Sequence[str]) -> TextPrompt:
        """One text prompt per text (one text-encoder pass for all): encode once, use on every frame.

        Raises ConfigError, before any work, for a model whose text path cannot
        work (``MODEL.DIM_PROJ`` != ``MODEL.DECODER.HIDDEN_DIM``).
        """
        self.model.check_text_prompts()
        texts = list(texts)
        for text in texts:
            if not isinstance(text, str) or not text.strip():
                raise PromptError(f"a text prompt must be a non-empty string, got {text!r}")
        with self._inference():
            return self.model.language.text_prompt(texts)

    def segment(self, frame: np.ndarray | EncodedFrame, prompt: VisualPrompt,
                to_original: bool = True) -> Segmentation:
        """Decode one frame against every referring prompt at once (the frame's features are shared)."""
        encoded = self._encoded(frame)
        features = encoded.features
        with self._inference():
            output = self.model.decoder(features.mask_features, features.levels, prompt)
            scores = embedding_scores(output.mask_embeddings, prompt.query)
            logits, best, score = self._chosen_masks(encoded, output.mask_embeddings, scores, to_original)
        return Segmentation(logits, score, best, (REFERENCE,) * len(prompt))

    def segment_objects(self, frame: np.ndarray | EncodedFrame, objects: Sequence[ObjectPrompt],
                        generator: torch.Generator | None = None, to_original: bool = True) -> Segmentation:
        """Segment one frame for objects prompted with any combination of reference, spatial prompt and text.

        The backbone and pixel decoder run once for all objects. Which decoder
        call serves an object: with a spatial prompt on a ``seem_v1`` model,
        the v1 interactive call (its clicks/strokes/boxes alone decide; a
        reference or text of that object is not used on this frame, as the
        official v1 call takes neither); otherwise the demo forward with all
        the object's prompts as tokens. Which query's mask is returned: the
        official demo's order (:mod:`seem_core.query_selection`) -- a positive
        spatial prompt, else the reference, else the text; the other prompts
        act through self-attention only. ``rules`` says which rule chose.

        Objects with the same combination are decoded together. ``generator``
        draws the spatial prompts' point subsets and the v1 spatial queries,
        group by group in order of first appearance, objects in order.
        """
        encoded = self._encoded(frame)
        for n, prompt in enumerate(objects):
            self._check(n, prompt)
        groups: dict[tuple, list[int]] = {}  # decoder call -> its objects
        for n, prompt in enumerate(objects):
            interactive = prompt.spatial is not None and self.model.uses_spatial_queries
            groups.setdefault(("v1",) if interactive else ("demo", *prompt.kinds()), []).append(n)
        height, width = encoded.geometry.original if to_original else encoded.geometry.resized
        logits = torch.empty(len(objects), height, width)
        scores = torch.empty(len(objects))
        best = torch.empty(len(objects), dtype=torch.long)
        rules = [""] * len(objects)
        with self._inference():
            for (call, *_), members in groups.items():
                group = [objects[n] for n in members]
                decode = self._decode_interactive if call == "v1" else self._decode_demo
                group_logits, group_best, group_scores, group_rules = decode(encoded, group, generator, to_original)
                logits[members], best[members], scores[members] = group_logits, group_best, group_scores
                for n, rule in zip(members, group_rules):
                    rules[n] = rule
        return Segmentation(logits, scores, best, tuple(rules))

    def _check(self, index: int, prompt: ObjectPrompt) -> None:
        where = f"object {index}"
        if not any(prompt.kinds()):
            raise PromptError(f"{where}: no prompt (give a reference, a spatial prompt or a text)")
        for name, value in (("reference", prompt.reference), ("text", prompt.text)):
            if value is not None and len(value) != 1:
                raise PromptError(f"{where}: {name} must be one prompt (select one row), got {len(value)}")
        spatial = prompt.spatial
        if spatial is not None and not spatial.has_positive:
            if self.model.uses_spatial_queries:
                raise PromptError(f"{where}: the v1 interactive path needs a positive click, stroke or box")
            if prompt.reference is None and prompt.text is None:
                raise PromptError(f"{where}: negative clicks alone cannot choose a mask; add a positive "
                                  "prompt, a reference or a text")

    def _decode_demo(self, encoded: EncodedFrame, group: list[ObjectPrompt], generator: torch.Generator | None,
                     to_original: bool) -> tuple[Tensor, Tensor, Tensor, list[str]]:
        """One demo-forward call for objects with the same prompt kinds."""
        features, decoder = encoded.features, self.model.decoder
        first = group[0]
        visual = VisualPrompt.concat([o.reference for o in group]) if first.reference is not None else None
        text = TextPrompt.concat([o.text for o in group]) if first.text is not None else None
        spatial = None
        if first.spatial is not None:
            positive, negative = self._spatial_masks(encoded, group)
            spatial = decoder.encode_prompt(features.mask_features, features.levels, positive, negative,
                                            sampler=PointSampler(generator))
        output = decoder(features.mask_features, features.levels, visual, spatial=spatial, text=text)
        rules = [choose_rule(o.spatial is not None and o.spatial.has_positive, o.reference is not None,
                             o.text is not None) for o in group]
        scores = {
            SPATIAL: lambda: embedding_scores(output.mask_embeddings, spatial.query),
            REFERENCE: lambda: embedding_scores(output.mask_embeddings, visual.query),
            TEXT: lambda: text_scores(output.captions, text.class_embedding, self.model.language.logit_scale),
        }
        by_rule = {rule: scores[rule]() for rule in set(rules)}
        chosen = torch.stack([by_rule[rule][n] for n, rule in enumerate(rules)])
        return (*self._chosen_masks(encoded, output.mask_embeddings, chosen, to_original), rules)

    def _decode_interactive(self, encoded: EncodedFrame, group: list[ObjectPrompt],
                            generator: torch.Generator | None,
                            to_original: bool) -> tuple[Tensor, Tensor, Tensor, list[str]]:
        """The v1 interactive call for objects with spatial prompts (``evaluate_interactive_single``)."""
        features, decoder = encoded.features, self.model.decoder
        positive, negative = self._spatial_masks(encoded, group)
        spatial = decoder.encode_prompt(features.mask_features, features.levels, positive, negative,
                                        sampler=SortedPointSampler(generator))
        output = decoder.forward_interactive(features.mask_features, features.levels, spatial, generator)
        logits = mask_logits(features.mask_features, output.chosen_embeddings[:, None])[:, 0]
        logits = logits_to_frame(logits, encoded.geometry, to_original=to_original, mode="bicubic")
        best = output.best
        scores = output.scores[torch.arange(len(group), device=best.device), best]
        return logits.float().cpu(), best.cpu(), scores.float().cpu(), [SPATIAL] * len(group)

    def _spatial_masks(self, encoded: EncodedFrame, group: list[ObjectPrompt]) -> tuple[Tensor, Tensor]:
        positive, negative = model_masks([o.spatial for o in group], encoded.geometry, self.model.dilation_kernel)
        return positive.to(self.device), negative.to(self.device)

    def _chosen_masks(self, encoded: EncodedFrame, mask_embeddings: Tensor, scores: Tensor,
                      to_original: bool) -> tuple[Tensor, Tensor, Tensor]:
        """The best query per object by ``scores`` (B, Q): its logits at frame size, index and score."""
        best = scores.argmax(dim=1)
        rows = torch.arange(scores.shape[0], device=best.device)
        chosen = mask_embeddings[rows, best].unsqueeze(1)
        logits = mask_logits(encoded.features.mask_features, chosen)[:, 0]
        logits = logits_to_frame(logits, encoded.geometry, to_original=to_original)
        return logits.float().cpu(), best.cpu(), scores[rows, best].float().cpu()
