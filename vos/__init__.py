"""seem-vos: segment objects through a video with SEEM.

    import vos
    tracker = vos.load("seem_focalt")
    for index, labels in tracker.track("clip.mp4", "first.png"):
        ...

The API is imported on first use, so ``import vos.masks`` (say) does not load the model code.
"""
from typing import Any

__all__ = ["FrameScores", "Track", "TrackedFrame", "Tracker", "load", "model_names", "read_scores"]


def __getattr__(name: str) -> Any:
    if name == "model_names":
        from .models import model_names

        return model_names
    if name in ("FrameScores", "read_scores"):
        from . import scores

        return getattr(scores, name)
    if name in __all__:
        from . import tracker

        return getattr(tracker, name)
    raise AttributeError(f"module 'vos' has no attribute {name!r}")
