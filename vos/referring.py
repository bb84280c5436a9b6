"""Referring-expression benchmarks (Ref-YouTube-VOS, Ref-DAVIS17): one text-prompted track per expression.

Masks go to ``<output>/Annotations/<video>/<exp_id>/<frame>.png`` (the Ref-YouTube-VOS
submission layout; value 1 = the object) and are zipped into ``submission.zip`` once
every expression is done. Expressions whose object has public ground truth are scored
with the DAVIS J and F on the binary masks (first and last frames left out, as DAVIS
does); ``results-referring-<split>.json`` holds each expression's numbers and their mean.
Each expression's folder resumes like any saved track.
"""
from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np
from tqdm import tqdm

from eval.davis import evaluate_sequence
from eval.datasets import EvaluationError
from eval.files import atomic_writer
from eval.referring import Expression, ReferringLayout

from .masks import read_mask
from .tracker import Tracker

SUBMISSION = "submission.zip"


def run_referring(tracker: Tracker, layout: ReferringLayout, output_dir: Path, *, max_frames: int | None = None,
                  overwrite: bool = False, evaluate: bool = True) -> dict:
    """Track every expression of ``layout`` from its text, write the masks, score what can be scored."""
    expressions = layout.expressions()  # checks the layout before anything is written
    rows = []
    for expression in tqdm(expressions, desc="expressions", unit="expression"):
        folder = output_dir / "Annotations" / expression.video / expression.exp_id
        names = layout.frames(expression.video)[:max_frames]
        track = tracker.track(layout.frames_dir(expression.video), text=expression.text, max_frames=max_frames)
        if track.frames.names != names:
            raise EvaluationError(f"{layout.frames_dir(expression.video)}: frames {track.frames.names[:3]}... "
                                  f"differ from meta_expressions.json's {names[:3]}...")
        track.save(folder, overwrite=overwrite, progress=False)
        row = {"video": expression.video, "exp_id": expression.exp_id, "text": expression.text}
        if evaluate:
            row.update(score_expression(layout, expression, folder, names) or {})
        rows.append(row)
    write_submission(output_dir)
    scored = [r for r in rows if "J&F-Mean" in r]
    results = {"expressions": rows, "scored": len(scored)}
    if scored:
        results.update({key: float(np.mean([r[key] for r in scored])) for key in ("J-Mean", "F-Mean", "J&F-Mean")})
    with atomic_writer(output_dir / f"results-referring-{layout.split}.json", "w") as fh:
        json.dump(results, fh, indent=1)
    return results


def score_expression(layout: ReferringLayout, expression: Expression, folder: Path,
                     names: list[str]) -> dict[str, float] | None:
    """Binary J&F of one expression's masks against its object's ground truth, when both exist."""
    annotations = layout.annotations_dir(expression.video)
    if expression.obj_id is None or not annotations.is_dir():
        return None
    truth = np.stack([read_mask(annotations / f"{name}.png") == expression.obj_id for name in names])
    predicted = np.stack([read_mask(folder / f"{name}.png") > 0 for name in names])
    scores = evaluate_sequence(truth.astype(np.uint8), predicted.astype(np.uint8), object_ids=[1])[1]
    return {"J-Mean": scores["J-Mean"], "F-Mean": scores["F-Mean"],
            "J&F-Mean": (scores["J-Mean"] + scores["F-Mean"]) / 2}


def write_submission(output_dir: Path) -> Path:
    """``submission.zip``: every mask under ``Annotations/`` (the server's layout), written atomically."""
    path = output_dir / SUBMISSION
    with atomic_writer(path, "wb") as fh, zipfile.ZipFile(fh, "w", zipfile.ZIP_DEFLATED) as archive:
        for mask in sorted((output_dir / "Annotations").rglob("*.png")):
            archive.write(mask, mask.relative_to(output_dir).as_posix())
    return path
