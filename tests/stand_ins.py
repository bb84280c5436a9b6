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


class TextStandIn(CopyStandIn):
    """Also takes texts: a text finds the pixels of ``found[text]`` from frame ``appears[text]`` on.

    Referring prompts still copy their mask; ``calls`` records, per frame, each object
    prompt's kinds as (has reference, text or None), to check which prompts were used.
    """

    def __init__(self, found: dict[str, np.ndarray], appears: dict[str, int] | None = None):
        super().__init__()
        self.found, self.appears = found, appears or {}
        self.calls: list[list[tuple[bool, str | None]]] = []

    def encode_text(self, texts):
        return TextRows(list(texts))

    def segment_objects(self, frame, objects, generator=None, to_original=True):
        frame_index = self.frames_seen - 1
        self.calls.append([(o.reference is not None, o.text.texts[0] if o.text else None) for o in objects])
        rows = []
        for prompt in objects:
            if prompt.reference is not None:  # the referring image chooses the query
                rows.append(np.where(self.masks[int(prompt.reference.query[0, 0])], 1.0, -1.0))
            else:
                text = prompt.text.texts[0]
                visible = frame_index >= self.appears.get(text, 0)
                rows.append(np.where(self.found[text] & visible, 1.0, -1.0))
        return type("Segmentation", (), {"logits": torch.tensor(np.stack(rows))})()


class TextRows:
    """Encoded texts of the stand-in: the strings themselves."""

    def __init__(self, texts: list[str]):
        self.texts = texts

    def __len__(self) -> int:
        return len(self.texts)

    def select(self, rows):
        return TextRows([self.texts[i] for i in rows])


class SpatialStandIn(CopyStandIn):
    """Also takes spatial prompts: the object is what the prompt draws (box, stroke, mask), or its
    reference's mask when the prompt has no positive part, plus a 3x3 square at each positive click,
    minus a 3x3 square at each negative click."""

    def segment_objects(self, frame, objects, generator=None, to_original=True):
        rows = []
        for prompt in objects:
            spatial = prompt.spatial
            region = spatial.positive.numpy() > 0
            if not spatial.has_positive and prompt.reference is not None:
                region = self.masks[int(prompt.reference.query[0, 0])].copy()
            for (x, y), positive in zip(spatial.points.tolist(), spatial.labels.tolist()):
                row, col = int(y), int(x)
                region[max(row - 1, 0):row + 2, max(col - 1, 0):col + 2] = positive
            rows.append(np.where(region, 1.0, -1.0))
        return type("Segmentation", (), {"logits": torch.tensor(np.stack(rows))})()
