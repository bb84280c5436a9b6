"""The settings of a run, checked in full before any work, and the help text that describes them.

Hydra composes ``configs/config.yaml`` with the command line; :func:`run_settings` turns the
result into typed :class:`RunSettings`, and every value that cannot work is a
:class:`~vos.errors.SettingsError` naming the option (``short_side=abc``, ``device=cuda``
without CUDA, ``dataset.shard=2/2``, a missing ``dataset.root``...). The option
descriptions live once, as comments in the YAML files; ``--help`` is made from them.
"""
from __future__ import annotations

import importlib.resources
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import torch
import yaml
from omegaconf import DictConfig, MissingMandatoryValue, OmegaConf

from seem_core.segmenter import check_precision
from .errors import SettingsError
from .models import model_names
from .propagate import MEMORY_STRATEGIES, PropagationConfig
from .tracker import text_items

DEVICES = ("auto", "cpu", "cuda")


# Each dataset config names its ``layout``; these are that layout's own options and their types.
LAYOUT_OPTIONS: dict[str, dict[str, str]] = {
    "davis": {"year": "text", "split": "text", "resolution": "text"},
    "youtubevos": {"split": "text", "all_frames": "flag", "write_all": "flag"},
    "folder": {"split": "folder", "ground_truth": "flag", "submission_root": "folder-or-null"},
    "videos": {},  # a folder of video files, each with <video>.png as its first-frame mask
    "referring": {"split": "text"},  # Ref-YouTube-VOS / Ref-DAVIS17: objects come from expressions (vos.referring)
}


@dataclass(frozen=True)
class DatasetSettings:
    name: str  # the dataset config's name (configs/dataset/<name>.yaml)
    root: Path
    layout: str  # a key of LAYOUT_OPTIONS: which eval.datasets layout reads the folder
    options: dict[str, Any]  # the layout's options (DAVIS: year, split, resolution; ...)
    shard: tuple[int, int]  # (i, n): this process takes every n-th sequence from the i-th


@dataclass(frozen=True)
class ExecutorSettings:
    """Where a benchmark's sequences are tracked (``executor=local`` or ``executor=ray``)."""

    kind: str = "local"
    address: str | None = None  # a running Ray cluster; None starts a local one
    num_workers: int = 1
    gpus_per_worker: float = 0.0
    max_attempts: int = 1  # tries per sequence when workers die


@dataclass(frozen=True)
class RunSettings:
    """Everything a run of ``run_vos.py`` needs, validated; paths are absolute."""

    output: Path
    overwrite: bool
    input: Path | None
    mask: Path | None
    text: dict[int, str] | None  # object id -> text
    prompts: Path | None  # JSON file of clicks/boxes/strokes (vos.interactive.read_prompts)
    ground_truth: Path | None
    dataset: DatasetSettings | None
    model: dict[str, Any]  # the model node: checkpoint, config, architecture
    device: str  # resolved: "cpu" or "cuda[:i]"
    precision: str
    winograd: bool
    short_side: int
    stride: int
    max_frames: int | None
    max_objects: int
    allow_truncated: bool
    overlay: bool
    evaluate: bool
    save_scores: bool
    propagation: PropagationConfig
    executor: ExecutorSettings = ExecutorSettings()

    @property
    def demo(self) -> bool:
        return self.input is None and self.dataset is None


def resolve_device(device: str) -> str:
    """``auto`` is CUDA when present, else the CPU; ``cuda`` without CUDA is an error."""
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise SettingsError(f"device={device}: this machine has no CUDA device (use device=cpu or device=auto)")
    return device


def run_settings(cfg: DictConfig, dataset_name: str | None = None) -> RunSettings:
    """Check every option of a composed run config; the first bad one is a SettingsError naming it."""
    reader = _Reader(cfg)
    device = reader.choice("device", DEVICES, prefix_ok=True)
    device = resolve_device(device)
    precision = reader.text("precision")
    try:
        check_precision(torch.device(device), precision)
    except ValueError as err:
        raise SettingsError(f"precision={precision}: {err}") from None
    memory = reader.choice("propagation.memory", tuple(MEMORY_STRATEGIES))
    propagation = PropagationConfig(memory, reader.number("propagation.threshold"), reader.integer("propagation.seed"),
                                    reader.flag("propagation.text_every_frame"))
    model = reader.node("model")
    if not isinstance(model.get("checkpoint"), str) or not model["checkpoint"]:
        raise SettingsError("model.checkpoint is required: a local path, a released file name or hf://owner/repo/file")
    if model.get("config"):
        model["config"] = str(absolute(model["config"]))
    return RunSettings(
        output=absolute(reader.text("output")),
        overwrite=reader.flag("overwrite"),
        input=reader.path("input"),
        mask=reader.path("mask"),
        text=reader.texts("text", reader.integer("max_objects", minimum=1, maximum=254)),
        prompts=reader.path("prompts"),
        ground_truth=reader.path("ground_truth"),
        dataset=_dataset(reader, dataset_name) if cfg.get("dataset") is not None else None,
        model=model,
        device=device,
        precision=precision,
        winograd=reader.flag("winograd"),
        short_side=reader.integer("short_side", minimum=32),
        stride=reader.integer("stride", minimum=1),
        max_frames=reader.integer("max_frames", minimum=1, optional=True),
        max_objects=reader.integer("max_objects", minimum=1, maximum=254),
        allow_truncated=reader.flag("allow_truncated"),
        overlay=reader.flag("overlay"),
        evaluate=reader.flag("evaluate"),
        save_scores=reader.flag("save_scores"),
        propagation=propagation,
        executor=_executor(reader),
    )


RAY_EXTRA = 'pip install -e ".[ray]"'


def _executor(reader: "_Reader") -> ExecutorSettings:
    """``executor=ray`` is checked here, Ray's presence included, so a run without it stops before any work."""
    if reader.cfg.get("executor") is None:
        return ExecutorSettings()
    kind = reader.choice("executor.kind", ("local", "ray"))
    if kind == "local":
        return ExecutorSettings()
    try:
        import ray  # noqa: F401
    except ImportError:
        raise SettingsError(f"executor=ray needs Ray, an optional extra: {RAY_EXTRA}") from None
    address = reader.value("executor.address")
    if address is not None and (not isinstance(address, str) or not address):
        raise SettingsError(f"executor.address must be a Ray address (e.g. auto or ray://host:10001), got {address!r}")
    gpus = reader.number("executor.gpus_per_worker")
    if gpus < 0:
        raise SettingsError(f"executor.gpus_per_worker must be >= 0, got {gpus:g}")
    return ExecutorSettings("ray", address, reader.integer("executor.num_workers", minimum=1), gpus,
                            reader.integer("executor.max_attempts", minimum=1))


def _dataset(reader: "_Reader", name: str | None) -> DatasetSettings:
    node = reader.cfg.dataset
    if OmegaConf.is_missing(node, "root") or node.root is None:
        raise SettingsError("dataset.root is required: the folder that holds the dataset")
    layout = reader.choice("dataset.layout", tuple(LAYOUT_OPTIONS))
    kinds = LAYOUT_OPTIONS[layout]
    unknown = sorted(set(node) - {"root", "layout", "shard", *kinds})
    if unknown:
        raise SettingsError(f"dataset.{unknown[0]} is not an option of {layout} datasets "
                            f"(they take {', '.join(sorted(kinds))})")
    options = {key: reader.typed(f"dataset.{key}", kind) for key, kind in kinds.items()}
    shard = node.get("shard")
    return DatasetSettings(
        name=name or "dataset",
        root=absolute(reader.text("dataset.root")),
        layout=layout,
        options=options,
        shard=parse_shard(None if shard is None else str(shard)),
    )


def parse_shard(shard: str | None) -> tuple[int, int]:
    """``"i/n"`` -> (i, n) with 0 <= i < n; None -> (0, 1)."""
    if shard is None:
        return 0, 1
    try:
        index, count = (int(part) for part in shard.split("/"))
    except ValueError:
        raise SettingsError(f"dataset.shard={shard}: must look like i/n (e.g. 0/4)") from None
    if not 0 <= index < count:
        raise SettingsError(f"dataset.shard={shard}: needs 0 <= i < n (the shards of n are 0/n .. {count - 1}/n)")
    return index, count


def absolute(path: Any) -> Path:
    """Paths are taken relative to the directory the command runs in (Hydra does not chdir here)."""
    return Path(str(path)).expanduser().resolve()


class _Reader:
    """Typed access to a composed config; each failure names the dotted option."""

    def __init__(self, cfg: DictConfig):
        self.cfg = cfg

    def value(self, key: str) -> Any:
        try:
            return OmegaConf.select(self.cfg, key, throw_on_missing=True)
        except MissingMandatoryValue:
            raise SettingsError(f"{key} is required") from None

    def node(self, key: str) -> dict[str, Any]:
        node = OmegaConf.to_container(OmegaConf.select(self.cfg, key), resolve=True)
        if not isinstance(node, dict):
            raise SettingsError(f"{key} must be a group of settings, got {node!r}")
        return node

    def text(self, key: str) -> str:
        value = self.value(key)
        if not isinstance(value, str) or not value:
            raise SettingsError(f"{key} must be a non-empty text, got {value!r}")
        return value

    def path(self, key: str) -> Path | None:
        value = self.value(key)
        return None if value is None else absolute(value)

    def texts(self, key: str, max_objects: int) -> dict[int, str] | None:
        """A text (object 1), ``{id: text, ...}`` written inline (YAML/JSON flow mapping), or a ``.json`` file of one."""
        value = self._raw_texts(key)
        return None if value is None else text_items(value, max_objects) or None

    def _raw_texts(self, key: str) -> Any:
        value = self.value(key)
        if value is None:
            return None
        if isinstance(value, DictConfig):
            return OmegaConf.to_container(value)
        if not isinstance(value, str):
            raise SettingsError(f"{key} must be a text, {{id: text}} or a .json file, got {value!r}")
        if value.endswith(".json"):
            path = absolute(value)
            try:
                value = path.read_text()
            except OSError as err:
                raise SettingsError(f"{key}={path}: cannot read it ({err.strerror})") from None
            try:
                return json.loads(value)
            except json.JSONDecodeError as err:
                raise SettingsError(f"{key}={path}: not valid JSON ({err})") from None
        if value.lstrip().startswith("{"):
            try:
                return yaml.safe_load(value)
            except yaml.YAMLError:
                raise SettingsError(f"{key}: {value!r} is not an {{id: text}} mapping") from None
        return value

    def flag(self, key: str) -> bool:
        value = self.value(key)
        if not isinstance(value, bool):
            raise SettingsError(f"{key} must be true or false, got {value!r}")
        return value

    def integer(self, key: str, minimum: int | None = None, maximum: int | None = None,
                optional: bool = False) -> int | None:
        value = self.value(key)
        if value is None and optional:
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            raise SettingsError(f"{key} must be an integer, got {value!r}")
        if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
            bounds = f">= {minimum}" if maximum is None else f"in {minimum}..{maximum}"
            raise SettingsError(f"{key} must be {bounds}, got {value}")
        return value

    def typed(self, key: str, kind: str) -> Any:
        """``text`` (non-empty), ``flag``, ``folder`` (a relative folder name, may be empty) or ``folder-or-null``."""
        if kind == "text":
            return str(self.value(key)) if isinstance(self.value(key), int) else self.text(key)
        if kind == "flag":
            return self.flag(key)
        value = self.value(key)
        if value is None and kind == "folder-or-null":
            return None
        if not isinstance(value, str) or value.startswith("/") or ".." in value.split("/"):
            raise SettingsError(f"{key} must be a folder name inside the dataset (or empty), got {value!r}")
        return value.strip("/")

    def number(self, key: str) -> float:
        value = self.value(key)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise SettingsError(f"{key} must be a number, got {value!r}")
        return float(value)

    def choice(self, key: str, choices: tuple[str, ...], prefix_ok: bool = False) -> str:
        value = self.text(key)
        if value not in choices and not (prefix_ok and re.fullmatch(r"cuda:\d+", value)):
            raise SettingsError(f"{key} must be one of {', '.join(choices)}, got {value!r}")
        return value


# ----------------------------------------------------------------------------- help

def config_dir() -> Path:
    return Path(str(importlib.resources.files("vos.configs")))


def commented_options(text: str) -> list[tuple[str, str, str]]:
    """``(dotted key, default, comment)`` of every ``key: value  # comment`` line of a config file.

    Nesting follows indentation; lines without a comment are left out (they are not options
    meant for the command line).
    """
    options, parents = [], []
    for line in text.splitlines():
        match = re.match(r"^(\s*)([A-Za-z_][\w]*):\s*([^#]*?)\s*#\s*(.*)$", line)
        bare = re.match(r"^(\s*)([A-Za-z_][\w]*):\s*$", line)
        found = match or bare
        if not found:
            continue
        depth = len(found.group(1)) // 2
        parents = parents[:depth]
        if bare:
            parents.append(bare.group(2))
            continue
        options.append((".".join([*parents, match.group(2)]), match.group(3), match.group(4)))
    return options


def help_text() -> str:
    """The ``--help`` page: every option with its default and meaning, then the model and dataset names."""
    directory = config_dir()
    lines = [
        "seem-vos: segment objects through a video from the masks of its first frame, with SEEM.",
        "",
        "Usage: seem-vos [option=value ...]     (or: python run_vos.py ...)",
        "  seem-vos input=clip.mp4 mask=first.png output=out/clip",
        "  seem-vos dataset=davis2017 dataset.root=/data/DAVIS output=out/davis",
        "",
        "Options (default in brackets):",
    ]
    options = commented_options((directory / "config.yaml").read_text())
    for group in ("dataset", "executor"):
        seen = set()
        for path in sorted((directory / group).glob("*.yaml"), key=lambda p: (p.stem == "local", p.stem)):
            for key, default, comment in commented_options(path.read_text()):
                if key not in seen:  # the first config (by name) that has an option describes it
                    seen.add(key)
                    options.append((f"{group}.{key}", default, comment))
    width = max(len(key) for key, _, _ in options) + 2
    for key, default, comment in options:
        shown = f" [{default}]" if default not in ("", "null") else ""
        lines.append(f"  {key.ljust(width)}{comment}{shown}")
    lines += ["", "model=<name> (model.checkpoint=<file> replaces its weights, model.config=<official SEEM yaml>"
                  " its architecture):"]
    lines += [f"  {name.ljust(width)}{_first_comment(directory / 'model' / f'{name}.yaml')}" for name in model_names()]
    lines += ["", "dataset=<name> (with dataset.root=<folder>):"]
    lines += [f"  {p.stem.ljust(width)}{_first_comment(p)}" for p in sorted((directory / "dataset").glob("*.yaml"))]
    lines += ["", "executor=<name> (for dataset runs):"]
    lines += [f"  {p.stem.ljust(width)}{_first_comment(p)}" for p in sorted((directory / "executor").glob("*.yaml"))]
    return "\n".join(lines)


def _first_comment(path: Path) -> str:
    for line in path.read_text().splitlines():
        if line.startswith("#"):
            return line.lstrip("# ").strip()
    return ""


def help_config() -> Mapping[str, Any]:
    """A Hydra ``hydra/help`` node whose page is :func:`help_text` (``$`` escaped for Hydra's template)."""
    return {"app_name": "seem-vos", "header": "", "footer": "", "template": help_text().replace("$", "$$")}
