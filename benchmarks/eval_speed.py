"""Throughput of ``vos-eval`` on the shared prediction sets, against the official toolkit.

Each run is a fresh ``python -m eval.cli`` process, so wall time includes interpreter
start-up and imports, as the recorded official timing (``official_timing.json``) does.
Prints frames per second, median wall time, peak memory and the speed-up over the
official toolkit. ``vos-benchmark`` (PyPI) is timed beside it when importable, and the
official toolkit when ``--official DIR`` points at a checkout of davis2017-evaluation;
otherwise the recorded official timing is the comparison.

    python benchmarks/eval_speed.py [--repeats 3] [--workers N] [--official DIR]
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("SEEM_VOS_SHARED", ROOT.parent / "shared")) / "data"


def timed(command: list[str], cwd: Path | None = None) -> tuple[float, float]:
    """(wall seconds, peak RSS in MB) of one child process (its own peak, via wait4)."""
    start = time.perf_counter()
    child = subprocess.Popen(command, cwd=cwd, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - start
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode:
        raise subprocess.CalledProcessError(child.returncode, command)
    return wall, usage.ru_maxrss / 1024


def median_run(command: list[str], repeats: int, cwd: Path | None = None) -> tuple[float, float]:
    runs = [timed(command, cwd) for _ in range(repeats)]
    return statistics.median(w for w, _ in runs), max(m for _, m in runs)


def davis_shim(tmp: Path, davis_root: Path) -> Path:
    """The official tool reads ImageSets/2017 only: link the data beside a 2017 copy of the 2016 list."""
    shim = tmp / "davis_shim"
    (shim / "ImageSets" / "2017").mkdir(parents=True)
    (shim / "ImageSets" / "2017" / "val.txt").write_text((davis_root / "ImageSets/2016/val.txt").read_text())
    for folder in ("JPEGImages", "Annotations"):
        (shim / folder).symlink_to(davis_root / folder)
    return shim


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument("--official", type=Path, default=None, help="checkout of davis2017-evaluation")
    parser.add_argument("--tools-python", default=sys.executable,
                        help="interpreter that has the official toolkit's needs (pandas, scikit-image) and "
                             "vos-benchmark, e.g. a scratch venv; default: this one")
    args = parser.parse_args()

    davis_root = SHARED / "davis2016"
    sets = sorted(p.parent for p in (SHARED / "predictions").glob("*/official_timing.json"))
    if not sets:
        sys.exit(f"no prediction sets under {SHARED / 'predictions'}")
    has_vos_benchmark = subprocess.run([args.tools_python, "-c", "import vos_benchmark"],
                                       capture_output=True).returncode == 0
    if not has_vos_benchmark:
        print(f"vos-benchmark: not importable by {args.tools_python} (its wheel pulls opencv-python, which "
              "clashes with the headless OpenCV here: install it in a scratch venv and pass --tools-python)")
    if args.official is None:
        print("official toolkit: no --official checkout given; using official_timing.json")

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for prediction_set in sets:
            recorded = json.loads((prediction_set / "official_timing.json").read_text())
            frames = recorded["frames_evaluated_total"]
            ours = [sys.executable, "-m", "eval.cli", "--davis-root", str(davis_root), "--results",
                    str(prediction_set), "--year", "2016", "--output", str(tmp / "ours")]
            if args.workers is not None:
                ours += ["--workers", str(args.workers)]
            wall, peak = median_run(ours, args.repeats, cwd=ROOT)
            print(f"\n{prediction_set.name}: {frames} scored frames")
            print(f"  vos-eval          {wall:6.2f} s  {frames / wall:7.1f} frames/s  peak {peak:6.0f} MB")
            official_wall = recorded["median_wall_s"]
            print(f"  official (record) {official_wall:6.2f} s  {frames / official_wall:7.1f} frames/s  "
                  f"peak {recorded['max_rss_mb_peak']:6.0f} MB  -> vos-eval is {official_wall / wall:.1f}x")
            if args.official is not None:
                copy = tmp / f"official_{prediction_set.name}"
                subprocess.run(["cp", "-r", str(prediction_set), str(copy)], check=True)
                for stale in copy.glob("official_*"):
                    stale.unlink()
                command = [args.tools_python, "evaluation_method.py", "--task", "semi-supervised", "--set", "val",
                           "--davis_path", str(davis_shim(tmp / prediction_set.name, davis_root)),
                           "--results_path", str(copy)]
                o_wall, o_peak = timed(command, cwd=args.official)  # it reuses its CSVs: run once
                print(f"  official (live)   {o_wall:6.2f} s  {frames / o_wall:7.1f} frames/s  peak {o_peak:6.0f} MB"
                      f"  -> vos-eval is {o_wall / wall:.1f}x")
            if has_vos_benchmark:
                # vos-benchmark has no command line; its README calls this function.
                call = (f"from vos_benchmark.benchmark import benchmark; "
                        f"benchmark([{str(davis_root / 'Annotations' / '480p')!r}], [{str(prediction_set)!r}])")
                command = [args.tools_python, "-c", call]
                try:
                    v_wall, v_peak = median_run(command, args.repeats)
                    print(f"  vos-benchmark     {v_wall:6.2f} s  {frames / v_wall:7.1f} frames/s  peak {v_peak:6.0f} MB"
                          f"  -> vos-eval is {v_wall / wall:.1f}x")
                except subprocess.CalledProcessError as err:
                    print(f"  vos-benchmark: failed to run ({err})")
    print("\npeak memory: each tool's own process (ru_maxrss from wait4)")


if __name__ == "__main__":
    main()
