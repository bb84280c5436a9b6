"""Output folders: claimed by one run, written atomically, never mixed with another run's files.

A run's folder remembers what produced it (``config.yaml``); a run with a different
input, model or propagation setting refuses to mix its files in unless told to
overwrite, and so does any run in a non-empty folder without that file (another tool's
masks, say). Every file is written atomically (temporary file, then rename), so an
interrupted run leaves whole files only.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Mapping

import yaml

from eval.files import atomic_writer

CONFIG_FILE = "config.yaml"
# Settings that change the masks a run writes; an output folder belongs to one value of them.
IDENTITY_KEYS = ("input", "mask", "dataset", "model", "propagation", "short_side", "stride", "max_frames",
                 "precision")


class OutputDirError(ValueError):
    """An output folder that holds another run's files, or cannot be written."""


def write_json(path: Path, data: Any) -> None:
    with atomic_writer(path, "w") as fh:
        json.dump(data, fh, indent=2)
        fh.write("\n")


def read_record(path: Path) -> dict[str, Any] | None:
    """A JSON record this project wrote, or None when there is none (or it is unreadable)."""
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None


def run_identity(config: Mapping[str, Any]) -> dict[str, Any]:
    """The part of a run's config that decides its outputs (see :data:`IDENTITY_KEYS`).

    A dataset's ``shard`` is left out: the shards of one benchmark share a folder.
    """
    identity = {key: config.get(key) for key in IDENTITY_KEYS}
    if config.get("save_scores"):  # only when on, so folders of runs from before the option still match
        identity["save_scores"] = True
    if identity["dataset"]:
        identity["dataset"] = {k: v for k, v in identity["dataset"].items() if k != "shard"}
    return identity


def check_writable(output_dir: Path) -> None:
    """Create ``output_dir`` and prove a file can be written there, or fail naming it."""
    if output_dir.exists() and not output_dir.is_dir():
        raise OutputDirError(f"{output_dir}: the output path is a file, not a folder")
    try:
        output_dir.mkdir(parents=True, exist_ok=True)
        with atomic_writer(output_dir / ".write-test", "w"):
            pass
        (output_dir / ".write-test").unlink()
    except OSError as err:
        raise OutputDirError(f"{output_dir}: cannot write to the output folder ({err.strerror or err})") from None


def prepare_output_dir(output_dir: str | os.PathLike, config: Mapping[str, Any], overwrite: bool = False) -> bool:
    """Claim ``output_dir`` for a run with ``config`` and save the config there.

    A folder saved by a run with a different identity, or a non-empty folder without
    a saved config, is refused unless ``overwrite``. Returns True when the folder held
    another run and ``overwrite`` let this one take it (its tracks are then redone).
    """
    output_dir = Path(output_dir)
    saved_path = output_dir / CONFIG_FILE
    if output_dir.exists() and not output_dir.is_dir():
        raise OutputDirError(f"{output_dir}: the output path is a file, not a folder")
    if saved_path.is_file():
        try:
            saved = yaml.safe_load(saved_path.read_text()) or {}
        except yaml.YAMLError as err:
            raise OutputDirError(f"{saved_path}: cannot read the saved config ({err})") from None
        if not isinstance(saved, dict):
            raise OutputDirError(f"{saved_path}: the saved config is not a mapping of settings")
        previous, current = run_identity(saved), run_identity(config)
        differences = [key for key in [*current, *(k for k in previous if k not in current)]
                       if previous.get(key) != current.get(key)]
        foreign = (f"{saved_path}: the output folder holds the results of another run (different "
                   f"{', '.join(differences)})") if differences else None
    elif output_dir.is_dir() and any(not p.name.startswith(".") for p in output_dir.iterdir()):
        # Masks or results of another tool, or of a run without a saved config, would be overwritten.
        # (Hidden names are skipped: a shard starting at the same time may be writing its config.yaml.)
        foreign = f"{output_dir}: the output folder is not empty and has no {CONFIG_FILE} of a seem-vos run"
    else:
        foreign = None
    if foreign and not overwrite:
        raise OutputDirError(f"{foreign}; choose another output folder or set overwrite=true")
    check_writable(output_dir)
    with atomic_writer(saved_path, "w") as fh:
        yaml.safe_dump(dict(config), fh, sort_keys=False)
    return foreign is not None
