"""SEEM (Segment Everything Everywhere All at Once) for referring-image video segmentation."""
from .checkpoint import CheckpointError, CheckpointNotFoundError, load_checkpoint, resolve_checkpoint
from .config import ConfigError, SEEMConfig, load_config
from .model import SEEM, build_model
from .segmenter import SEEMSegmenter, Segmentation

__all__ = [
    "SEEM", "SEEMConfig", "SEEMSegmenter", "Segmentation", "CheckpointError", "CheckpointNotFoundError",
    "ConfigError", "build_model", "load_checkpoint", "load_config", "resolve_checkpoint",
]
