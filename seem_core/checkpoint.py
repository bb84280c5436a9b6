"""Finding and loading SEEM checkpoints.

Released SEEM weights (``seem_focalt_v0.pt``, ``seem_focall_v1.pt``, ...) are
flat state dicts with the official module names and no prefix. The official
loader keeps only exactly matching keys and silently leaves everything else at
its random initialisation, the most common way to get garbage masks. Here a
mismatch is an error that lists what is missing, unexpected or mis-shaped.

A checkpoint reference is resolved in order: a local file; else a Hugging Face
hub file (``hf://owner/repo/file.pt``, or a bare released file name such as
``seem_focalt_v0.pt``, which lives in ``xdecoder/SEEM``), through
``huggingface_hub`` and its cache; else a :class:`CheckpointNotFoundError` that
says what to download and which config key to set.
"""
from __future__ import annotations

import logging
import os
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping
from urllib.parse import urlparse

import torch
from torch import Tensor, nn

log = logging.getLogger(__name__)

HUB_REPO = "xdecoder/SEEM"
RELEASED_FILES = (
    "seem_focalt_v0.pt", "seem_focall_v0.pt", "seem_focalt_v1.pt", "seem_focall_v1.pt",
    "seem_samvitb_v1.pt", "seem_samvitl_v1.pt",
)
# Keys of the official training wrapper that inference does not use.
IGNORED_KEYS = {
    "criterion.empty_weight": "SetCriterion's no-object class weight (a training-loss buffer of v0/v1 files)",
}
_PREFIXES = ("module.", "model.")


class CheckpointNotFoundError(FileNotFoundError):
    """No local file and no hub download; the message says what to fetch and where to point."""


class CheckpointError(ValueError):
    """A checkpoint file that cannot be read or does not fit the model."""


@dataclass
class LoadReport:
    """What a load did: keys left out on purpose, and (non-strict only) what did not fit."""

    path: str
    ignored: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    mismatched: list[str] = field(default_factory=list)


def hub_location(reference: str) -> tuple[str, str] | None:
    """``(repo_id, filename)`` if ``reference`` names a hub file, else None."""
    if reference.startswith("hf://"):
        parts = reference[len("hf://"):].split("/")
        if len(parts) < 3 or not all(parts):
            raise CheckpointError(f"{reference}: expected hf://owner/repo/path/to/file")
        return "/".join(parts[:2]), "/".join(parts[2:])
    if reference in RELEASED_FILES:
        return HUB_REPO, reference
    return None


def resolve_checkpoint(reference: str | os.PathLike, config_key: str = "model.checkpoint") -> Path:
    """Local path, else hub download (cached), else a clear :class:`CheckpointNotFoundError`."""
    path = Path(reference).expanduser()
    if path.is_file():
        return path
    location = hub_location(str(reference))
    if location is None:
        raise CheckpointNotFoundError(
            f"checkpoint {str(reference)!r} not found: it is not a local file. Set {config_key} to the "
            f"path of a SEEM checkpoint, or to a released file name ({', '.join(RELEASED_FILES)}) or "
            f"hf://owner/repo/file to fetch it from the Hugging Face hub.")
    repo_id, filename = location
    from huggingface_hub import constants, hf_hub_download

    url = f"{constants.ENDPOINT}/{repo_id}/resolve/main/{filename}"

    def not_fetched(reason: str) -> CheckpointNotFoundError:
        return CheckpointNotFoundError(
            f"checkpoint {str(reference)!r} is not a local file and could not be fetched from the Hugging Face "
            f"hub ({reason}). Download {url} and set {config_key}=/path/to/{Path(filename).name}")

    try:  # the cache first: no network round trip (and no retries when offline) for a cached file
        return Path(hf_hub_download(repo_id=repo_id, filename=filename, local_files_only=True))
    except Exception:
        log.info("%s is not in the Hugging Face cache; downloading it from %s", filename, repo_id)
    # Offline, the hub client would retry for half a minute before giving up: ask first.
    if constants.HF_HUB_OFFLINE:
        raise not_fetched("HF_HUB_OFFLINE is set")
    unreachable = hub_unreachable(constants.ENDPOINT)
    if unreachable:
        raise not_fetched(unreachable)
    try:
        return Path(hf_hub_download(repo_id=repo_id, filename=filename))
    except Exception as err:  # gated, missing file, a broken connection: all end the same way
        raise not_fetched(f"{type(err).__name__}: {_first_line(err)}") from None


def hub_unreachable(endpoint: str, timeout: float = 3.0) -> str | None:
    """Why the hub cannot be reached (no name resolution, no route, ...), or None when it answers."""
    parsed = urlparse(endpoint)
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    try:
        socket.create_connection((parsed.hostname, port), timeout=timeout).close()
    except OSError as err:
        return f"{parsed.hostname} is unreachable: {err.strerror or err}"
    return None


def _first_line(err: Exception) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else "no detail"


def _load_tensors(path: Path):
    """``torch.load`` memory-mapped where the file format allows (no second copy of the weights in RAM)."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except RuntimeError:  # legacy (non-zip) files cannot be memory-mapped
        return torch.load(path, map_location="cpu", weights_only=True)


def read_state_dict(path: str | os.PathLike) -> dict[str, Tensor]:
    """Read a ``.pt`` state dict (tensors only; a ``{"model": ...}`` wrapper is unwrapped)."""
    path = Path(path)
    try:
        data = _load_tensors(path)
    except FileNotFoundError:
        raise CheckpointNotFoundError(f"{path}: checkpoint file not found") from None
    except Exception as err:
        raise CheckpointError(f"{path}: cannot read checkpoint ({type(err).__name__}: {_first_line(err)})") from None
    for wrapper in ("model", "state_dict"):
        if isinstance(data, Mapping) and isinstance(data.get(wrapper), Mapping):
            data = data[wrapper]
    if not isinstance(data, Mapping) or not all(isinstance(v, Tensor) for v in data.values()):
        raise CheckpointError(f"{path}: not a state dict of tensors")
    return dict(data)


def remap_official_keys(state_dict: Mapping[str, Tensor]) -> tuple[dict[str, Tensor], list[str]]:
    """Map a checkpoint's keys onto this implementation's; return it and the keys dropped.

    Our module names are the official ones, so this only strips a wrapper prefix
    (``module.`` of DDP, ``model.`` of the training wrapper) and drops keys that
    inference never reads (:data:`IGNORED_KEYS`).
    """
    remapped = dict(state_dict)
    for prefix in _PREFIXES:
        if remapped and all(k.startswith(prefix) for k in remapped):
            remapped = {k[len(prefix):]: v for k, v in remapped.items()}
    ignored = sorted(k for k in remapped if k in IGNORED_KEYS)
    for key in ignored:
        del remapped[key]
    return remapped, ignored


def _summary(title: str, items: list[str], limit: int = 5) -> str:
    shown = ", ".join(items[:limit])
    more = f", ... ({len(items) - limit} more)" if len(items) > limit else ""
    return f"{len(items)} {title}: {shown}{more}"


def load_checkpoint(model: nn.Module, path: str | os.PathLike, strict: bool = True) -> LoadReport:
    """Load a checkpoint file into ``model``; strict by default.

    Strict: any missing key, unexpected key or shape mismatch raises a
    :class:`CheckpointError` listing the first few of each with counts, and the
    model is left untouched. Non-strict: what fits is loaded, the rest is
    reported in the returned :class:`LoadReport` and logged as a warning.
    """
    state_dict, ignored = remap_official_keys(read_state_dict(path))
    for key in ignored:
        log.info("%s: ignoring %s: %s", path, key, IGNORED_KEYS[key])
    expected = model.state_dict()
    report = LoadReport(str(path), ignored=ignored)
    report.missing = [k for k in expected if k not in state_dict]
    report.unexpected = [k for k in state_dict if k not in expected]
    mismatched = [k for k, v in expected.items() if k in state_dict and state_dict[k].shape != v.shape]
    report.mismatched = [f"{k} {tuple(state_dict[k].shape)} vs model {tuple(expected[k].shape)}"
                         for k in mismatched]
    problems = [
        _summary(title, items)
        for title, items in (("missing keys", report.missing), ("unexpected keys", report.unexpected),
                             ("shape mismatches", report.mismatched))
        if items
    ]
    if problems and strict:
        raise CheckpointError(f"{path}: checkpoint does not fit the model: " + "; ".join(problems)
                              + ". Check that the model config matches the checkpoint.")
    if problems:
        log.warning("%s: loading non-strictly: %s", path, "; ".join(problems))
        state_dict = {k: v for k, v in state_dict.items() if k in expected and k not in mismatched}
    model.load_state_dict(state_dict, strict=not problems)
    return report
