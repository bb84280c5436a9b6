"""Propagate first-frame object masks through a video with SEEM referring-image prompts.

Every object gets one referring-image prompt from the frame where it is first
annotated (SEEM's visual sampler inside its mask). Each later frame runs the
backbone and pixel decoder once and is decoded against all prompts together.

A memory strategy decides which extra prompts join the first-frame ones:

* ``first`` -- none; the protocol of the SEEM paper.
* ``first+previous`` -- each object's predicted mask on the previous frame is
  encoded as a second referring prompt (SEEM's memory prompt).

When an object has several prompts, its mask logits are averaged (a vote in
logit space). The per-object logits then become one label map by
:func:`label_map`. Objects can join at any frame (from an annotation of that
frame) and leave at any frame (:meth:`Propagator.step` ``removed``).

Objects named by a text (SEEM's grounding) join on the frame that gives the
text: until they are found, the text alone prompts them (its best-matching
query's mask); the first frame where they get pixels turns that mask into
their referring prompt, as an annotation would. An object with both a mask
and a text, or any text object with ``text_every_frame``, keeps the text as a
second prompt on every frame; SEEM's own order then decides which query is
taken: the referring image's best match (the text acts through attention).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Protocol

import numpy as np
import torch
from torch import Tensor

from seem_core.language import TextPrompt
from seem_core.segmenter import ObjectPrompt
from seem_core.visual_sampler import VisualPrompt
from .errors import SettingsError
from .masks import object_ids, split_objects


class Segmenter(Protocol):
    """What propagation needs from :class:`seem_core.segmenter.SEEMSegmenter`."""

    def encode_frame(self, frame: np.ndarray) -> Any: ...

    def encode_reference(self, frame: Any, masks: np.ndarray, generator: torch.Generator | None = None) \
            -> VisualPrompt: ...

    def segment(self, frame: Any, prompt: VisualPrompt, to_original: bool = True) -> Any: ...

    def segment_objects(self, frame: Any, objects: list[ObjectPrompt], generator: torch.Generator | None = None,
                        to_original: bool = True) -> Any:
        """Only needed for text prompts."""


@dataclass(frozen=True)
class PropagationConfig:
    """``memory``: a key of :data:`MEMORY_STRATEGIES`; ``threshold``: background threshold on
    mask logits (0.0 = probability 0.5); ``seed``: seeds the visual sampler's point subsets;
    ``text_every_frame``: objects started from a text keep it as a prompt on every frame."""

    memory: str = "first"
    threshold: float = 0.0
    seed: int = 0
    text_every_frame: bool = False

    def __post_init__(self) -> None:
        if self.memory not in MEMORY_STRATEGIES:
            raise SettingsError(f"propagation.memory must be one of {', '.join(MEMORY_STRATEGIES)}, "
                             f"got {self.memory!r}")


def label_map(logits: Tensor | np.ndarray, ids: list[int], threshold: float = 0.0) -> np.ndarray:
    """One (H, W) uint8 label map from per-object mask logits (N, H, W), without overlaps.

    A pixel goes to the object with the highest logit if that logit is above
    ``threshold``; otherwise it is background (0). Ties go to the first object.
    """
    logits = torch.as_tensor(logits)
    if logits.ndim != 3 or logits.shape[0] != len(ids):
        raise ValueError(f"expected logits of shape ({len(ids)}, H, W), got {tuple(logits.shape)}")
    if not ids:
        return np.zeros(tuple(logits.shape[1:]), dtype=np.uint8)
    best, index = logits.float().max(dim=0)
    lookup = torch.tensor(ids, dtype=torch.uint8)
    labels = torch.where(best > threshold, lookup[index], torch.zeros((), dtype=torch.uint8))
    return labels.numpy()


@dataclass
class Prompts:
    """A batch of referring prompts and, per row, the id of the object it serves."""

    prompt: VisualPrompt
    owners: Tensor  # (R,) long object ids

    def __len__(self) -> int:
        return len(self.owners)

    def without(self, ids: list[int]) -> "Prompts | None":
        """These prompts minus the rows of ``ids`` (None when nothing is left)."""
        keep = ~torch.isin(self.owners, torch.tensor(ids, dtype=torch.long))
        if bool(keep.all()):
            return self
        if not bool(keep.any()):
            return None
        rows = keep.nonzero()[:, 0]
        return Prompts(self.prompt.select(rows), self.owners[rows])

    @staticmethod
    def concat(parts: list["Prompts | None"]) -> "Prompts | None":
        parts = [p for p in parts if p is not None and len(p)]
        if not parts:
            return None
        return Prompts(VisualPrompt.concat([p.prompt for p in parts]), torch.cat([p.owners for p in parts]))


class MemoryStrategy:
    """Extra prompts beyond each object's first reference; ``observe`` sees every prediction."""

    def extra(self) -> Prompts | None:
        return None

    def observe(self, segmenter: Segmenter, encoded: Any, masks: np.ndarray, ids: list[int],
                generator: torch.Generator) -> None:
        """``masks`` (N, H, W) bool: this frame's prediction of the objects ``ids``."""

    def forget(self, ids: list[int]) -> None:
        """Drop what is kept for objects that are no longer tracked."""


class FirstFrameMemory(MemoryStrategy):
    """Only the first-frame prompts (the SEEM paper's video protocol)."""


class PreviousFrameMemory(MemoryStrategy):
    """The previous frame's predicted masks as a second prompt of every object still visible."""

    def __init__(self) -> None:
        self._previous: Prompts | None = None

    def extra(self) -> Prompts | None:
        return self._previous

    def observe(self, segmenter: Segmenter, encoded: Any, masks: np.ndarray, ids: list[int],
                generator: torch.Generator) -> None:
        visible = [i for i in range(len(masks)) if masks[i].any()]
        if not visible:  # a prompt from an empty mask carries nothing
            self._previous = None
            return
        prompt = segmenter.encode_reference(encoded, masks[visible], generator=generator)
        self._previous = Prompts(prompt, torch.tensor([ids[i] for i in visible], dtype=torch.long))

    def forget(self, ids: list[int]) -> None:
        if self._previous is not None:
            self._previous = self._previous.without(ids)


MEMORY_STRATEGIES: dict[str, Callable[[], MemoryStrategy]] = {
    "first": FirstFrameMemory,
    "first+previous": PreviousFrameMemory,
}


def fuse_by_owner(logits: Tensor, owners: Tensor, ids: list[int]) -> Tensor:
    """Average the rows of ``logits`` (R, H, W) that serve the same object: (len(ids), H, W) in ``ids`` order."""
    logits = logits.float()
    position = {object_id: i for i, object_id in enumerate(ids)}
    rows = torch.tensor([position[int(o)] for o in owners], dtype=torch.long)
    total = logits.new_zeros((len(ids), *logits.shape[1:])).index_add_(0, rows, logits)
    counts = torch.bincount(rows, minlength=len(ids)).clamp(min=1).to(logits.dtype)
    return total / counts.view(-1, 1, 1)


class Propagator:
    """Frame-by-frame propagation state: tracked object ids, their prompts, the memory.

    Feed frames in order to :meth:`step`; pass the annotation of a frame where
    objects are given (the first frame, and any later frame that introduces new
    ids). New objects are copied from the annotation on their own frame; objects
    already tracked are always predicted, so a fully annotated later frame (a
    DAVIS ground-truth PNG) leaks nothing about them. Only one frame and its
    encoding are held at a time (two with ``first+previous``'s prompt).
    After each step, :attr:`logits` holds that frame's per-object logits.
    """

    def __init__(self, segmenter: Segmenter, config: PropagationConfig | None = None):
        self.segmenter = segmenter
        self.config = config or PropagationConfig()
        self.memory = MEMORY_STRATEGIES[self.config.memory]()
        self.generator = torch.Generator().manual_seed(self.config.seed)
        self.ids: list[int] = []
        # (N, H, W) float32 logits of the last frame, rows in ``ids`` order; +-inf for objects
        # copied from that frame's annotation.
        self.logits: Tensor | None = None
        self._references: Prompts | None = None
        self._texts: dict[int, TextPrompt] = {}  # objects whose text is a prompt on every frame
        self._unfound: dict[int, TextPrompt] = {}  # text objects without pixels yet: the text alone prompts them

    def step(self, frame: np.ndarray, annotation: np.ndarray | None = None,
             removed: list[int] | tuple[int, ...] = (), texts: dict[int, TextPrompt] | None = None) -> np.ndarray:
        """Label map (H, W) uint8 of one frame; the first frame must bring at least one object.

        ``removed`` ids stop being tracked from this frame on; ``texts`` (one encoded
        text per object id) start objects from words, or add the text to an object
        annotated on this frame.
        """
        height, width = frame.shape[:2]
        self._remove([i for i in removed if i in self.ids])
        new_ids = self._new_ids(annotation, (height, width))
        texts = {i: t for i, t in (texts or {}).items() if i not in self.ids}
        text_only = [i for i in texts if i not in new_ids]
        if not self.ids and not new_ids and not text_only:
            raise ValueError("nothing to track: the first frame needs an annotation or a text with at least one "
                             "object")
        for object_id, text in texts.items():
            if object_id in new_ids or self.config.text_every_frame:
                self._texts[object_id] = text
        self._unfound.update({i: texts[i] for i in text_only})
        self.ids.extend(text_only)
        encoded = self.segmenter.encode_frame(frame)
        logits = self._predict(encoded, (height, width))
        if new_ids:
            new_masks = split_objects(annotation, new_ids)
            copied = torch.from_numpy(new_masks).float().mul_(2).sub_(1).mul_(float("inf"))
            logits = torch.cat([logits, copied])
            self._add_objects(encoded, new_ids, new_masks)
        self.logits = logits
        labels = label_map(logits, self.ids, self.config.threshold)
        self._found(encoded, labels)
        if self.ids:
            self.memory.observe(self.segmenter, encoded, split_objects(labels, self.ids), self.ids, self.generator)
        return labels

    def _new_ids(self, annotation: np.ndarray | None, size: tuple[int, int]) -> list[int]:
        if annotation is None:
            return []
        if annotation.shape != size:
            raise ValueError(f"annotation of shape {annotation.shape} does not match the frame size {size}")
        return [i for i in object_ids(annotation) if i not in self.ids]

    def _predict(self, encoded: Any, size: tuple[int, int]) -> Tensor:
        prompts = Prompts.concat([self._references, self.memory.extra()])
        if prompts is None and not self._unfound:
            return torch.zeros((0, *size))
        if self._texts or self._unfound:
            return self._predict_with_texts(encoded, prompts)
        logits = self.segmenter.segment(encoded, prompts.prompt).logits
        return fuse_by_owner(logits, prompts.owners, self.ids)

    def _predict_with_texts(self, encoded: Any, prompts: Prompts | None) -> Tensor:
        """Every referring prompt with its object's text (when it keeps one), and the unfound texts alone."""
        objects, owners = [], []
        for row, owner in enumerate(prompts.owners.tolist() if prompts is not None else []):
            objects.append(ObjectPrompt(reference=prompts.prompt.select([row]), text=self._texts.get(owner)))
            owners.append(owner)
        for owner, text in self._unfound.items():
            objects.append(ObjectPrompt(text=text))
            owners.append(owner)
        logits = self.segmenter.segment_objects(encoded, objects, generator=self.generator).logits
        return fuse_by_owner(logits, torch.tensor(owners, dtype=torch.long), self.ids)

    def _found(self, encoded: Any, labels: np.ndarray) -> None:
        """Text objects that got pixels on this frame: their mask becomes their referring prompt."""
        found = [i for i in self._unfound if (labels == i).any()]
        if not found:
            return
        prompt = self.segmenter.encode_reference(encoded, split_objects(labels, found), generator=self.generator)
        self._references = Prompts.concat([self._references, Prompts(prompt, torch.tensor(found, dtype=torch.long))])
        for object_id in found:
            del self._unfound[object_id]

    def _add_objects(self, encoded: Any, ids: list[int], masks: np.ndarray) -> None:
        prompt = self.segmenter.encode_reference(encoded, masks, generator=self.generator)
        self._references = Prompts.concat([self._references, Prompts(prompt, torch.tensor(ids, dtype=torch.long))])
        self.ids.extend(ids)

    def _remove(self, ids: list[int]) -> None:
        if not ids:
            return
        if self._references is not None:
            self._references = self._references.without(ids)
        for object_id in ids:
            self._texts.pop(object_id, None)
            self._unfound.pop(object_id, None)
        self.memory.forget(ids)
        self.ids = [i for i in self.ids if i not in ids]
