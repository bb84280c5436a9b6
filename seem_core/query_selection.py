"""Which query's mask answers a prompt: the official demo's three rules and their order.

The official image demo (``interactive_infer_image``) decodes once with every
prompt it was given and then picks one object query by the first rule that
applies, in this order:

1. ``spatial`` -- the object has a positive stroke/click/box on this frame:
   mask embedding . the mean positive spatial query (``pred_pspatials``).
2. ``reference`` -- the object has a referring-image prompt: mask embedding .
   the reference's mean visual query (``pred_pvisuals``).
3. ``text`` -- the object has a text: cosine of the query's class embedding
   (``pred_captions``) and the text's end-token embedding, times
   ``exp(logit_scale)`` clamped at 100 (``vl_similarity``).

So in a composition the later prompts act only through self-attention, never
in the choice. The argmax is taken without a threshold. On the v1 interactive
path the same ``spatial`` rule chooses among the spatial queries.
"""
from __future__ import annotations

import torch
from torch import Tensor

from .language import l2_normalize

SPATIAL, REFERENCE, TEXT = "spatial", "reference", "text"


def choose_rule(spatial: bool, reference: bool, text: bool) -> str:
    """The rule that picks the mask of an object prompted with the given kinds (demo order).

    ``spatial`` means a positive spatial prompt: negative clicks alone cannot
    pick a query (their mean is not the object), so they leave the choice to
    the reference or the text.
    """
    for rule, present in ((SPATIAL, spatial), (REFERENCE, reference), (TEXT, text)):
        if present:
            return rule
    raise ValueError("no prompt can choose the mask: give a positive spatial prompt, a reference or a text")


def embedding_scores(mask_embeddings: Tensor, query: Tensor) -> Tensor:
    """Spatial and reference rules: (B, Q, C) mask embeddings . (B, C) query -> (B, Q)."""
    return torch.einsum("bqc,bc->bq", mask_embeddings, query.to(mask_embeddings.dtype))


def text_scores(captions: Tensor, class_embedding: Tensor, logit_scale: Tensor) -> Tensor:
    """Text rule: (B, Q, D) query class embeddings vs (B, D) text embeddings -> (B, Q)."""
    similarity = torch.einsum("bqd,bd->bq", l2_normalize(captions), l2_normalize(class_embedding))
    return logit_scale.exp().clamp(max=100) * similarity
