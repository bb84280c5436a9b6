"""Runs of the pipeline on one video or on a DAVIS benchmark, safe to interrupt and resume.

Every file is written atomically (temporary file, then rename). A sequence is
finished when its completion marker exists; the marker is written after its
last mask, so a rerun skips finished sequences and redoes an interrupted one
from its first frame (propagation carries state from frame to frame). An
output folder remembers what produced it (``config.yaml``); a run with a
different input, model or propagation setting refuses to mix its files in
unless told to overwrite, and so does any run in a non-empty folder without
that file (another tool's masks, say).
"""
from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np
import yaml
from tqdm import tqdm

from eval.files import MaskFileError, atomic_writer
from .frames import FrameSource, open_frames
from .masks import object_ids, read_mask, write_mask
from .propagate import Segmenter, PropagationConfig, Propagator

COMPLETE_MARKER = ".complete.json"
CONFIG_FILE = "config.yaml"
SUMMARY_FILE = "summary.json"
# Settings that change the masks a run writes; an output folder belongs to one value of them.
IDENTITY_KEYS = ("input", "mask", "dataset", "model", "propagation", "short_side", "stride", "max_frames",
                 "precision")
DEFAULT_FPS = 24.0


class OutputDirError(ValueError):
    """An output folder that holds another run's files."""


@dataclass
class VideoSummary:
    """What :func:`segment_video` produced."""

    mask_dir: Path
    names: list[str]
    object_ids: list[int]
    overlay_path: Path | None
    metrics: dict[int, dict[str, float]] | None


def write_json(path: Path, data: Any) -> None:
    with atomic_writer(path, "w") as fh:
        json.dump(data, fh, indent=2)
        fh.write("\n")


def is_complete(mask_dir: str | os.PathLike) -> bool:
    return (Path(mask_dir) / COMPLETE_MARKER).is_file()


def run_identity(config: Mapping[str, Any]) -> dict[str, Any]:
    """The part of a run's config that decides its outputs (see :data:`IDENTITY_KEYS`).

    A dataset's ``shard`` is left out: the shards of one benchmark share a folder.
    """
    identity = {key: config.get(key) for key in IDENTITY_KEYS}
    if identity["dataset"]:
        identity["dataset"] = {k: v for k, v in identity["dataset"].items() if k != "shard"}
    return identity


def prepare_output_dir(output_dir: str | os.PathLike, config: Mapping[str, Any], overwrite: bool = False) -> None:
    """Claim ``output_dir`` for a run with ``config`` and save the config there.

    A folder saved by a run with a different identity, or a non-empty folder
    without a saved config, is refused unless ``overwrite``: then completion
    markers and summary are removed so everything is recomputed (files are
    replaced as they are rewritten).
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
        previous = run_identity(saved)
        differences = [key for key, value in run_identity(config).items() if previous[key] != value]
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
    if foreign:
        for marker in output_dir.glob(f"**/{COMPLETE_MARKER}"):
            marker.unlink()
        (output_dir / SUMMARY_FILE).unlink(missing_ok=True)
    with atomic_writer(saved_path, "w") as fh:
        yaml.safe_dump(dict(config), fh, sort_keys=False)


def first_annotation(path: str | os.PathLike, size: tuple[int, int]) -> np.ndarray:
    """The first-frame label map, checked against the frame size and for at least one object."""
    labels = read_mask(path, expected_size=size)
    if not object_ids(labels):
        raise MaskFileError(f"{path}: the mask has no object (every pixel is background, id 0)")
    return labels


def annotations_in(folder: Path, names: list[str], size: tuple[int, int]) -> Callable[[int], np.ndarray | None]:
    """Frame i's annotation from ``folder/<name>.png`` when that file exists (DAVIS layout)."""
    first = first_annotation(folder / f"{names[0]}.png", size)

    def annotation_at(index: int) -> np.ndarray | None:
        if index == 0:
            return first
        path = folder / f"{names[index]}.png"
        return read_mask(path, expected_size=size) if path.is_file() else None

    return annotation_at


def write_sequence(segmenter: Segmenter, frames: FrameSource, annotation_at: Callable[[int], np.ndarray | None],
                   mask_dir: Path, propagation: PropagationConfig | None = None,
                   desc: str | None = None) -> list[int]:
    """Propagate and write ``mask_dir/<frame>.png`` for every frame, then the completion marker.

    Returns the tracked object ids.
    """
    (mask_dir / COMPLETE_MARKER).unlink(missing_ok=True)
    propagator = Propagator(segmenter, propagation)
    progress = tqdm(frames, total=len(frames), desc=desc or mask_dir.name, unit="frame", leave=False)
    for index, frame in enumerate(progress):
        labels = propagator.step(frame, annotation_at(index))
        write_mask(mask_dir / f"{frames.names[index]}.png", labels)
    write_json(mask_dir / COMPLETE_MARKER, {"frames": len(frames), "object_ids": propagator.ids})
    return propagator.ids


def read_marker(mask_dir: Path) -> dict[str, Any]:
    return json.loads((mask_dir / COMPLETE_MARKER).read_text())


def segment_video(segmenter: Segmenter, frames: FrameSource | str | os.PathLike, first_mask: str | os.PathLike,
                  output_dir: str | os.PathLike, *, propagation: PropagationConfig | None = None, stride: int = 1,
                  max_frames: int | None = None, overlay: bool = True,
                  ground_truth: str | os.PathLike | None = None) -> VideoSummary:
    """Segment one video from its first-frame mask into ``output_dir``.

    Writes ``masks/<frame>.png`` (DAVIS palette), ``overlay.mp4`` and
    ``summary.json`` (last). A finished run (completion marker in ``masks/``)
    is not recomputed. ``ground_truth`` is a folder of label PNGs named like
    the frames; with it the summary holds per-object J&F.
    """
    if not isinstance(frames, FrameSource):
        with open_frames(frames, stride=stride, max_frames=max_frames) as source:
            return segment_video(segmenter, source, first_mask, output_dir, propagation=propagation, stride=stride,
                                 overlay=overlay, ground_truth=ground_truth)
    started = time.perf_counter()
    output_dir = Path(output_dir)
    first = first_annotation(first_mask, frames.size)
    mask_dir = output_dir / "masks"
    if is_complete(mask_dir):
        ids = read_marker(mask_dir)["object_ids"]
    else:
        ids = write_sequence(segmenter, frames, {0: first}.get, mask_dir, propagation, desc=output_dir.name)
    fps = (frames.fps or DEFAULT_FPS) / stride
    overlay_path = write_overlay(output_dir / "overlay.mp4", frames, mask_dir, fps) if overlay else None
    metrics = sequence_metrics(Path(ground_truth), mask_dir, frames.names) if ground_truth is not None else None
    summary = VideoSummary(mask_dir, list(frames.names), ids, overlay_path, metrics)
    write_json(output_dir / SUMMARY_FILE, summary_record(summary, frames, first_mask, time.perf_counter() - started))
    return summary


def write_overlay(path: Path, frames: FrameSource, mask_dir: Path, fps: float) -> Path:
    """Overlay video from the written masks, streaming (frames are decoded a second time)."""
    from .visualize import write_overlay_video

    labels = (read_mask(mask_dir / f"{name}.png") for name in frames.names)
    return write_overlay_video(path, iter(frames), labels, fps=fps)


def sequence_metrics(gt_dir: Path, mask_dir: Path, names: list[str]) -> dict[int, dict[str, float]]:
    """Per-object DAVIS metrics of the written masks against ``gt_dir/<frame>.png``."""
    from eval import evaluate_sequence

    gt = np.stack([read_mask(gt_dir / f"{name}.png") for name in names])
    pred = np.stack([read_mask(mask_dir / f"{name}.png", expected_size=gt.shape[1:]) for name in names])
    return evaluate_sequence(gt, pred)


def mean_jf(metrics: Mapping[int, Mapping[str, float]]) -> float:
    return float(np.mean([m["J&F-Mean"] for m in metrics.values()]))


def summary_record(summary: VideoSummary, frames: FrameSource, first_mask: str | os.PathLike,
                   seconds: float) -> dict[str, Any]:
    record = {
        "input": str(frames.path),
        "mask": str(first_mask),
        "frames": len(summary.names),
        "size": list(frames.size),
        "object_ids": summary.object_ids,
        "masks": str(summary.mask_dir),
        "overlay": str(summary.overlay_path) if summary.overlay_path else None,
        "seconds": round(seconds, 3),
    }
    if summary.metrics is not None:
        record["J&F-Mean"] = mean_jf(summary.metrics)
        record["per_object"] = {str(k): v for k, v in summary.metrics.items()}
    return record


def parse_shard(shard: str | None) -> tuple[int, int]:
    """``"i/n"`` -> (i, n) with 0 <= i < n; None -> (0, 1)."""
    if shard is None:
        return 0, 1
    try:
        index, count = (int(part) for part in str(shard).split("/"))
    except ValueError:
        raise ValueError(f"dataset.shard must look like i/n (e.g. 0/4), got {shard!r}") from None
    if not 0 <= index < count:
        raise ValueError(f"dataset.shard {shard!r}: need 0 <= i < n")
    return index, count


@dataclass(frozen=True)
class DavisDataset:
    """A DAVIS-layout folder: ``ImageSets/<year>/<split>.txt``, ``JPEGImages/<res>/``, ``Annotations/<res>/``."""

    root: Path
    year: str = "2017"
    split: str = "val"
    resolution: str = "480p"

    def sequences(self) -> list[str]:
        path = self.root / "ImageSets" / self.year / f"{self.split}.txt"
        if not path.is_file():
            raise FileNotFoundError(f"{path}: sequence list not found (is dataset.root a DAVIS folder?)")
        return [line.strip() for line in path.read_text().splitlines() if line.strip()]

    def frames_dir(self, sequence: str) -> Path:
        return self.root / "JPEGImages" / self.resolution / sequence

    def annotations_dir(self, sequence: str) -> Path:
        return self.root / "Annotations" / self.resolution / sequence


def run_benchmark(segmenter: Segmenter, dataset: DavisDataset, output_dir: str | os.PathLike, *,
                  propagation: PropagationConfig | None = None, shard: str | None = None, stride: int = 1,
                  max_frames: int | None = None, evaluate: bool = True) -> dict | None:
    """Write ``output_dir/<seq>/<frame>.png`` for this shard's sequences, then evaluate.

    Evaluation runs only when every sequence of the split is complete (so the
    last shard, or a later run with nothing left to do, evaluates the merged
    folder) and the run covers whole sequences (``stride=1``, no ``max_frames``).
    Returns the results of ``eval.evaluate_davis`` or None.
    """
    output_dir = Path(output_dir)
    sequences = dataset.sequences()
    index, count = parse_shard(shard)
    mine = sequences[index::count]
    todo = [s for s in mine if not is_complete(output_dir / s)]
    for sequence in tqdm(todo, desc="sequences", unit="seq", initial=len(mine) - len(todo), total=len(mine)):
        with open_frames(dataset.frames_dir(sequence), stride=stride, max_frames=max_frames) as frames:
            annotation_at = annotations_in(dataset.annotations_dir(sequence), frames.names, frames.size)
            write_sequence(segmenter, frames, annotation_at, output_dir / sequence, propagation, desc=sequence)
    if not evaluate:
        return None
    missing = [s for s in sequences if not is_complete(output_dir / s)]
    if missing:
        print(f"evaluation waits: {len(missing)} of {len(sequences)} sequences not finished yet "
              f"(e.g. {missing[0]}); run again without dataset.shard once all shards are done")
        return None
    if stride != 1 or max_frames is not None:
        print("evaluation skipped: DAVIS scores need every frame (stride=1, max_frames=null)")
        return None
    return evaluate_results(dataset, output_dir, sequences)


def evaluate_results(dataset: DavisDataset, output_dir: Path, sequences: list[str]) -> dict:
    """DAVIS metrics of a finished results folder: CSV and JSON reports there, table printed."""
    import eval as davis_eval

    results = davis_eval.evaluate_davis(dataset.root, output_dir, subset=dataset.split, year=dataset.year,
                                        sequences=sequences)
    davis_eval.write_reports(results, output_dir, subset=dataset.split)
    print(davis_eval.format_global_table(results))
    return results
