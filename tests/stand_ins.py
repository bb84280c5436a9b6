"""Stand-in segmenters whose answers are known exactly, for pipeline tests without a model."""
from __future__ import annotations

import numpy as np
import torch

from seem_core.visual_sampler import VisualPrompt


class Interrupted(RuntimeError):
    pass


class CopyStandIn:
    """Predicts every object exactly where its reference mask was (logits +-1); can fail at frame k."""

    def __init__(self, fail_at_frame: int | None = None):
        self.fail_at_frame = fail_at_frame
        self.frames_seen = 0
        self.masks: list[np.ndarray] = []

    def encode_frame(self, frame):
        if self.frames_seen == self.fail_at_frame:
            raise Interrupted(f"stand-in stops at frame {self.frames_seen}")
        self.frames_seen += 1
        return frame

    def encode_reference(self, frame, masks, generator=None) -> VisualPrompt:
        start = len(self.masks)
        self.masks.extend(np.asarray(masks, dtype=bool))
        query = torch.arange(start, len(self.masks), dtype=torch.float32)[:, None]
        return VisualPrompt(query, query, [query[:, None]], [torch.zeros(len(masks), 1, dtype=torch.bool)])

    def segment(self, frame, prompt, to_original=True):
        rows = [np.where(self.masks[i], 1.0, -1.0) for i in prompt.query[:, 0].long().tolist()]
        return type("Segmentation", (), {"logits": torch.tensor(np.stack(rows))})()
