"""The model registry: released SEEM checkpoints by name, and turning a model description into a segmenter.

A model is described by ``configs/model/<name>.yaml`` (shipped inside the package as
``vos.configs``, the same files ``run_vos.py model=<name>`` composes): ``architecture`` in
this project's layout, an optional ``config`` pointing at an official SEEM YAML that
replaces it, and the ``checkpoint`` to load. A file may start from another one with a
Hydra ``defaults`` list (``seem_focalt_v1`` is ``seem_focalt`` with the v1 checkpoint).
``checkpoint: random`` stands for seeded random weights (``seem_tiny_random``: try the
pipeline without downloading anything).
"""
from __future__ import annotations

import importlib.resources
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import torch
import yaml
from omegaconf import OmegaConf

from seem_core.checkpoint import resolve_checkpoint
from seem_core.config import ConfigError
from seem_core.model import build_model
from seem_core.segmenter import SEEMSegmenter

RANDOM_WEIGHTS = "random"
RANDOM_WEIGHTS_SEED = 0


def model_dir() -> Path:
    return Path(str(importlib.resources.files("vos.configs") / "model"))


def model_names() -> list[str]:
    """Names ``vos.load`` and ``run_vos.py model=`` accept."""
    return sorted(p.stem for p in model_dir().glob("*.yaml"))


def read_model_file(name: str) -> dict[str, Any]:
    """A registry entry with its ``defaults`` merged in (later entries override earlier ones)."""
    path = model_dir() / f"{name}.yaml"
    if not path.is_file():
        raise ConfigError(f"unknown model {name!r}; known models: {', '.join(model_names())}")
    node = yaml.safe_load(path.read_text()) or {}
    bases = [read_model_file(base) for base in node.pop("defaults", []) if base != "_self_"]
    return OmegaConf.to_container(OmegaConf.merge(*bases, node)) if bases else node


@dataclass(frozen=True)
class ModelSpec:
    """What to build and which weights to load into it."""

    architecture: Any  # what seem_core.model.build_model takes: an official SEEM YAML path or our layout
    checkpoint: str  # local path, released file name, hf://owner/repo/file, or "random"
    name: str | None = None  # the registry name, when it came from the registry

    def record(self) -> dict[str, Any]:
        """The spec as a run's ``config.yaml`` records it (a YAML path as text)."""
        key = "config" if isinstance(self.architecture, (str, Path)) else "architecture"
        architecture = str(self.architecture) if key == "config" else self.architecture
        return {**({"name": self.name} if self.name else {}), "checkpoint": self.checkpoint, key: architecture}


def model_spec(model: str | os.PathLike | Mapping[str, Any], checkpoint: str | os.PathLike | None = None) -> ModelSpec:
    """A registry name, a model file, an official SEEM YAML (with ``checkpoint``), or a model node."""
    name = None
    if isinstance(model, str) and not model.endswith((".yaml", ".yml")):
        name, node = model, read_model_file(model)
    elif isinstance(model, Mapping):
        node = dict(model)
    else:
        path = Path(model)
        if not path.is_file():
            raise ConfigError(f"{path}: model config file not found")
        node = yaml.safe_load(path.read_text())
        if not (isinstance(node, Mapping) and "architecture" in node):
            node = {"architecture": path}  # an official SEEM YAML or an architecture file
    checkpoint = checkpoint or node.get("checkpoint")
    if checkpoint is None:
        raise ConfigError(f"{model}: no checkpoint given and the model config names none")
    return ModelSpec(node.get("config") or node["architecture"], str(checkpoint), name)


def load_segmenter(spec: ModelSpec, *, config_key: str = "checkpoint", **segmenter_options: Any) -> SEEMSegmenter:
    """Build the model and load its weights; ``segmenter_options`` go to :class:`SEEMSegmenter`.

    The checkpoint is resolved before anything is built, so a missing file fails at once;
    ``config_key`` is the option that names it where the caller set it (``checkpoint=`` in
    Python, ``model.checkpoint=`` on the command line).
    """
    if spec.checkpoint == RANDOM_WEIGHTS:
        with torch.random.fork_rng():
            torch.manual_seed(RANDOM_WEIGHTS_SEED)
            model = build_model(spec.architecture)
        return SEEMSegmenter(model, **segmenter_options)
    return SEEMSegmenter.from_checkpoint(spec.architecture, spec.checkpoint, config_key=config_key,
                                         **segmenter_options)


def resolved_checkpoint(spec: ModelSpec, config_key: str) -> str:
    """The checkpoint as an absolute local path (downloaded if needed), or "random"."""
    if spec.checkpoint == RANDOM_WEIGHTS:
        return RANDOM_WEIGHTS
    return str(resolve_checkpoint(spec.checkpoint, config_key=config_key).resolve())
