"""A benchmark run: every sequence of a dataset split tracked into one results folder, then scored.

The dataset's layout (where frames, annotations and sequence lists are) belongs to
``eval.datasets``, so the runner and the evaluator read the same files. Each sequence is a
:class:`~vos.tracker.Track` saved into ``<output>/<sequence>/``: finished sequences are
skipped on a rerun and an interrupted one is redone. ``shard=(i, n)`` takes every n-th
sequence, so several processes or machines can split a benchmark; the run that finds every
sequence finished evaluates the merged folder.
"""
from __future__ import annotations

import logging
from pathlib import Path

from tqdm import tqdm

from eval.datasets import DavisLayout
from eval.files import MaskFileError
from .outputs import read_record
from .tracker import TRACK_RECORD, Tracker

log = logging.getLogger(__name__)


def is_finished(sequence_dir: Path) -> bool:
    record = read_record(sequence_dir / TRACK_RECORD)
    return bool(record and record.get("complete"))


def run_benchmark(tracker: Tracker, layout: DavisLayout, output_dir: Path, *, shard: tuple[int, int] = (0, 1),
                  stride: int = 1, max_frames: int | None = None, max_objects: int = 32,
                  allow_truncated: bool = False, overwrite: bool = False, evaluate: bool = True) -> dict | None:
    """Track this shard's sequences into ``output_dir/<seq>/``, then evaluate when everything is there.

    Evaluation runs only when every sequence of the split is finished and the run covers
    whole sequences (``stride=1``, no ``max_frames``). Returns ``eval.evaluate_davis``'s
    results, or None.
    """
    sequences = layout.sequences()
    index, count = shard
    mine = sequences[index::count]
    todo = [s for s in mine if overwrite or not is_finished(output_dir / s)]
    for sequence in tqdm(todo, desc="sequences", unit="seq", initial=len(mine) - len(todo), total=len(mine)):
        track = tracker.track(layout.frames_dir(sequence), _first_mask(layout, sequence), stride=stride,
                              max_frames=max_frames, max_objects=max_objects, allow_truncated=allow_truncated)
        track.save(output_dir / sequence, overwrite=overwrite)
    if not evaluate:
        return None
    missing = [s for s in sequences if not is_finished(output_dir / s)]
    if missing:
        log.warning("evaluation waits: %d of %d sequences not finished yet (e.g. %s); run again without "
                    "dataset.shard once all shards are done", len(missing), len(sequences), missing[0])
        return None
    if stride != 1 or max_frames is not None:
        log.warning("evaluation skipped: the benchmark scores every frame (stride=1, max_frames=null)")
        return None
    return evaluate_results(layout, output_dir, sequences)


def _first_mask(layout: DavisLayout, sequence: str) -> Path:
    """The semi-supervised protocol gives each sequence's first annotated frame only."""
    annotations = sorted(layout.annotations_dir(sequence).glob("*.png"))
    if not annotations:
        raise MaskFileError(f"{layout.annotations_dir(sequence)}: no annotation PNG for sequence {sequence}")
    return annotations[0]


def evaluate_results(layout: DavisLayout, output_dir: Path, sequences: list[str]) -> dict:
    """Benchmark metrics of a finished results folder, with the CSV and JSON reports written there."""
    import eval as davis_eval

    results = davis_eval.evaluate_davis(layout.root, output_dir, subset=layout.split, year=layout.year,
                                        resolution=layout.resolution, sequences=sequences)
    davis_eval.write_reports(results, output_dir, subset=layout.split)
    return results
