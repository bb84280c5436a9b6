"""A benchmark run: every sequence of a dataset split tracked into one results folder, then scored or zipped.

The dataset's layout (frames, where each object is given, which frames are written, where
masks go, the submission zip, local ground truth) belongs to ``eval.datasets``, so the
runner and the evaluator read the same files. Each sequence is a
:class:`~vos.tracker.Track` saved into ``<output>/<results_subdir>/<sequence>/``: finished
sequences are skipped on a rerun and an interrupted one is redone. ``shard=(i, n)`` takes
every n-th sequence, so several processes or machines can split a benchmark; the run that
finds every sequence finished evaluates the merged folder (DAVIS with the official
toolkit's numbers, other sets with ground truth per :mod:`eval.objects`) and writes the
submission zip of a set scored on a server. ``run_report*.json`` says what the run cost.
"""
from __future__ import annotations

import logging
import time
import zipfile
from collections.abc import Callable
from pathlib import Path

from tqdm import tqdm

from eval.datasets import BenchmarkLayout, DavisLayout, FolderLayout, VideoFilesLayout, YouTubeVOSLayout
from eval.files import atomic_writer
from .errors import SettingsError
from .frames import as_frame_source
from .outputs import read_record
from .run_report import RunReport
from .settings import ExecutorSettings
from .tracker import TRACK_RECORD, Track, TrackedFrame, Tracker

log = logging.getLogger(__name__)

SUBMISSION_FILE = "submission.zip"
SCORES_DIR = "scores"


LAYOUTS = {"davis": DavisLayout, "youtubevos": YouTubeVOSLayout, "folder": FolderLayout,
           "videos": VideoFilesLayout}


def dataset_layout(layout: str, root: Path, options: dict) -> BenchmarkLayout:
    """The ``eval.datasets`` layout a dataset config names, with its options (see vos.settings.LAYOUT_OPTIONS)."""
    return LAYOUTS[layout](root, **options)


def is_finished(sequence_dir: Path) -> bool:
    record = read_record(sequence_dir / TRACK_RECORD)
    return bool(record and record.get("complete"))


def results_root(layout: BenchmarkLayout, output_dir: Path) -> Path:
    return output_dir / layout.results_subdir if layout.results_subdir else output_dir


def sequence_track(tracker: Tracker, layout: BenchmarkLayout, sequence: str, *, stride: int = 1,
                   max_frames: int | None = None, max_objects: int = 32, allow_truncated: bool = False,
                   logits: bool = False, prompts: dict[str, list] | None = None) -> Track:
    """The sequence's frames with each object given at its first annotation (objects may start late).

    An object whose first annotation falls outside the kept frames (``stride``, ``max_frames``)
    is not tracked. A sequence that ``prompts`` lists starts from those clicks, boxes and
    strokes instead (:mod:`vos.interactive`).
    """
    frames = as_frame_source(layout.frames_dir(sequence), stride=stride, max_frames=max_frames, verify=True,
                             allow_truncated=allow_truncated)
    if prompts and sequence in prompts:
        return tracker.track(frames, prompts=prompts[sequence], max_objects=max_objects)
    index = {name: i for i, name in enumerate(frames.names)}
    given = layout.prompt_frames(sequence)
    left_out = sorted(set(given) - set(index))
    if left_out:
        log.warning("%s: objects given on frame(s) %s are not tracked (not among the kept frames)",
                    sequence, ", ".join(left_out))
    masks = {index[name]: path for name, path in given.items() if name in index}
    return tracker.track(frames, masks, max_objects=max_objects, logits=logits)


def run_benchmark(tracker: Tracker, layout: BenchmarkLayout, output_dir: Path, *, shard: tuple[int, int] = (0, 1),
                  stride: int = 1, max_frames: int | None = None, max_objects: int = 32,
                  allow_truncated: bool = False, overwrite: bool = False, evaluate: bool = True,
                  executor: ExecutorSettings | None = None, make_tracker: Callable[[], Tracker] | None = None,
                  save_scores: bool = False, prompts: dict[str, list] | None = None) -> dict | None:
    """Track this shard's sequences into the results folder, then evaluate or zip when everything is there.

    With a Ray ``executor``, workers build their model with ``make_tracker`` and ``tracker``
    only fingerprints the tracks the driver writes. ``save_scores`` also writes each frame's
    per-object probabilities to ``<output>/scores/<sequence>/<frame>.npz`` (see :mod:`vos.scores`).
    ``prompts`` ({sequence: clicks/boxes/strokes}, see :func:`check_dataset_prompts`) start those
    sequences from prompts instead of their annotations. Evaluation and the zip need every
    sequence of the split finished over whole sequences (``stride=1``, no ``max_frames``).
    Returns the evaluation's results, or None.
    """
    sequences = layout.sequences()
    results = results_root(layout, output_dir)
    index, count = shard
    mine = sequences[index::count]
    todo = [s for s in mine if overwrite or not is_finished(results / s)]
    options = {"stride": stride, "max_frames": max_frames, "max_objects": max_objects,
               "allow_truncated": allow_truncated, "logits": save_scores, "prompts": prompts}
    report = RunReport()
    progress = tqdm(desc="sequences", unit="seq", initial=len(mine) - len(todo), total=len(mine))

    def save(sequence: str, computed: list[TrackedFrame] | None, started: float) -> None:
        """Write one sequence (tracked now, or ``computed`` by a worker) and time it."""
        track = sequence_track(tracker, layout, sequence, **options)
        track.save(results / sequence, overwrite=overwrite, only=layout.written_frames(sequence), computed=computed,
                   scores=output_dir / SCORES_DIR / sequence if save_scores else None)
        report.add(sequence, len(track.frames), time.perf_counter() - started)
        progress.update()

    if executor is None or executor.kind == "local":
        for sequence in todo:
            save(sequence, None, time.perf_counter())
    else:
        from .ray_executor import track_on_ray

        for sequence, computed, seconds in track_on_ray(make_tracker, layout, todo, options, executor):
            save(sequence, computed, time.perf_counter() - seconds)
    progress.close()
    report.save(output_dir / ("run_report.json" if count == 1 else f"run_report-shard{index}of{count}.json"))
    missing = [s for s in sequences if not is_finished(results / s)]
    if missing:
        log.warning("evaluation waits: %d of %d sequences not finished yet (e.g. %s); run again without "
                    "dataset.shard once all shards are done", len(missing), len(sequences), missing[0])
        return None
    if stride != 1 or max_frames is not None:
        log.warning("evaluation and submission zip skipped: the benchmark needs every frame (stride=1, "
                    "max_frames=null)")
        return None
    if layout.submission_root is not None:
        path = write_submission(layout, output_dir, sequences)
        log.info("submission for the benchmark's server: %s", path)
    if not evaluate:
        return None
    if not layout.scored_locally():
        log.info("no local ground truth for this split: it is scored on the benchmark's server")
        return None
    return evaluate_results(layout, output_dir, sequences)


def check_dataset_prompts(path: Path, layout: BenchmarkLayout, stride: int = 1,
                          max_frames: int | None = None) -> dict[str, list]:
    """A prompts file for a benchmark, ``{sequence: [prompts as vos.interactive reads them]}``, checked
    against each sequence's frames (count and size) before any work."""
    from .interactive import check_prompts, read_prompts, read_prompts_file

    data = read_prompts_file(path)
    if not isinstance(data, dict) or not data:
        raise SettingsError(f"{path}: a dataset's prompts file maps sequence names to prompt lists, "
                            '{"<sequence>": [{"object": 1, "frame": 0, "points": [[x, y]], "labels": [1]}]}')
    known = set(layout.sequences())
    for sequence, entries in data.items():
        if sequence not in known:
            raise SettingsError(f"{path}: sequence {sequence!r} is not in this dataset split")
        where = f"{path} [{sequence}]"
        frames = as_frame_source(layout.frames_dir(sequence), stride=stride, max_frames=max_frames)
        check_prompts(read_prompts(entries, where), frames, where)
    return data


def write_submission(layout: BenchmarkLayout, output_dir: Path, sequences: list[str]) -> Path:
    """``submission.zip``: each sequence's PNGs as ``<submission_root>/<seq>/<frame>.png``, written atomically."""
    results = results_root(layout, output_dir)
    prefix = f"{layout.submission_root}/" if layout.submission_root else ""
    path = output_dir / SUBMISSION_FILE
    with atomic_writer(path, "wb") as fh, zipfile.ZipFile(fh, "w", zipfile.ZIP_STORED) as archive:
        for sequence in sequences:
            for png in sorted((results / sequence).glob("*.png")):
                archive.write(png, f"{prefix}{sequence}/{png.name}")
    return path


def evaluate_results(layout: BenchmarkLayout, output_dir: Path, sequences: list[str]) -> dict:
    """Benchmark metrics of a finished results folder, with the CSV and JSON reports written there."""
    import eval as davis_eval

    if isinstance(layout, DavisLayout):
        results = davis_eval.evaluate_davis(layout.root, output_dir, subset=layout.split, year=layout.year,
                                            resolution=layout.resolution, sequences=sequences)
    else:
        from eval.objects import evaluate_objects

        results = evaluate_objects(layout, results_root(layout, output_dir), sequences)
    subset = getattr(layout, "split", "") or "all"
    davis_eval.write_reports(results, output_dir, subset=subset)
    return results
