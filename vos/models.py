"""Turn this project's model configs into a ready segmenter.

A model is described by a ``configs/model/*.yaml`` file (or the same node inside
the run config): ``architecture`` in our layout, an optional ``config`` pointing
at an official SEEM YAML that replaces it, and the ``checkpoint`` to load. An
official SEEM YAML or a bare architecture file works too, given a checkpoint.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping

import yaml

from seem_core.config import ConfigError
from seem_core.segmenter import SEEMSegmenter


def model_source(model: str | os.PathLike | Mapping[str, Any]) -> tuple[Any, str | None]:
    """``(what build_model takes, default checkpoint)`` of a model file, a model node, or a bare config file."""
    if not isinstance(model, Mapping):
        path = Path(model)
        if not path.is_file():
            raise ConfigError(f"{path}: model config file not found")
        node = yaml.safe_load(path.read_text())
        if not (isinstance(node, Mapping) and "architecture" in node):
            return path, None  # an official SEEM YAML or an architecture file: build_model reads it
        model = node
    return model.get("config") or model["architecture"], model.get("checkpoint")


def load_segmenter(model: str | os.PathLike | Mapping[str, Any], checkpoint: str | os.PathLike | None = None,
                   **segmenter_options: Any) -> SEEMSegmenter:
    """A :class:`SEEMSegmenter` for ``model`` with ``checkpoint`` (default: the model's own).

    ``segmenter_options`` go to the segmenter (``device``, ``precision``, ``short_side``).
    """
    config, default_checkpoint = model_source(model)
    checkpoint = checkpoint or default_checkpoint
    if checkpoint is None:
        raise ConfigError(f"{model}: no checkpoint given and the model config names none")
    return SEEMSegmenter.from_checkpoint(config, checkpoint, **segmenter_options)
