"""``vos-eval``: score a results folder on DAVIS and write the toolkit's reports.

Unlike the official ``evaluation_method.py`` it always recomputes (an earlier run's
reports are deleted before scoring starts, so a run that fails leaves none behind that
look current), rejects unknown flags, and exits with status 2 and a message naming the
sequence and file on bad input.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from eval.datasets import TASKS, EvaluationError
from eval.davis import evaluate_davis
from eval.report import format_global_table, format_per_sequence_table, remove_reports, write_reports

EXIT_BAD_INPUT = 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vos-eval", description="Evaluate video object segmentation results with the DAVIS protocol."
    )
    parser.add_argument("--davis-root", type=Path, required=True,
                        help="DAVIS folder with JPEGImages/<resolution>, Annotations/<resolution> and ImageSets/<year>/")
    parser.add_argument("--results", type=Path, required=True,
                        help="folder with one sub-folder of indexed PNGs (<frame>.png) per sequence")
    parser.add_argument("--set", default="val", help="subset listed in ImageSets/<year>/<set>.txt (default: val)")
    parser.add_argument("--year", default="2017", choices=["2016", "2017"], help="ImageSets year (default: 2017)")
    parser.add_argument("--resolution", default="480p",
                        help="annotations to score against, as the masks were made: 480p (default) or Full-Resolution")
    parser.add_argument("--task", default="semi-supervised", choices=TASKS, help="default: semi-supervised")
    parser.add_argument("--output", type=Path, default=None, help="where to write the reports (default: --results)")
    parser.add_argument("--workers", type=int, default=None, help="worker threads (default: one per core)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    start = time.perf_counter()
    print(f"Evaluating sequences for the {args.task} task...")
    output = args.output or args.results
    try:
        remove_reports(output, args.set)
        results = evaluate_davis(args.davis_root, args.results, subset=args.set, year=args.year,
                                 resolution=args.resolution, task=args.task, workers=args.workers)
        paths = write_reports(results, output, args.set)
    except (EvaluationError, OSError) as err:
        print(f"vos-eval: error: {err}", file=sys.stderr)
        return EXIT_BAD_INPUT
    for path in paths:
        print(f"Results saved in {path}")
    print(f"--------------------------- Global results for {args.set} ---------------------------")
    print(format_global_table(results))
    print(f"\n---------- Per sequence results for {args.set} ----------")
    print(format_per_sequence_table(results))
    print(f"\nTotal time: {time.perf_counter() - start:.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
