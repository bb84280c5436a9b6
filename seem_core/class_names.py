"""The default open vocabulary: COCO panoptic class names and the CLIP prompt templates.

Both lists are public data kept as JSON in ``assets/`` (copies of SEEM's
``COCO_PANOPTIC_CLASSES`` and ``get_prompt_templates()``), so the package works
without the SEEM repository.
"""
from __future__ import annotations

import json
from pathlib import Path

_ASSETS = Path(__file__).parent / "assets"
# SEEM's panoptic names mark stuff/merged categories with these suffixes; prompts drop them.
_NAME_SUFFIXES = ("-other", "-merged", "-stuff")


def _load_strings(name: str) -> tuple[str, ...]:
    path = _ASSETS / name
    values = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
        raise ValueError(f"{path}: expected a JSON list of strings")
    return tuple(values)


COCO_PANOPTIC_CLASSES: tuple[str, ...] = _load_strings("coco_panoptic_classes.json")
# What the official demo embeds at start-up: the 133 panoptic names plus "background".
DEFAULT_CLASS_NAMES: tuple[str, ...] = COCO_PANOPTIC_CLASSES + ("background",)
PROMPT_TEMPLATES: tuple[str, ...] = _load_strings("prompt_templates.json")


def prompt_name(name: str) -> str:
    """A class name as it goes into a template: SEEM's ``-other/-merged/-stuff`` markers removed."""
    for suffix in _NAME_SUFFIXES:
        name = name.replace(suffix, "")
    return name
