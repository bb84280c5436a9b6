"""The one entry point: segment a video, or a DAVIS benchmark, from first-frame masks with SEEM.

    python run_vos.py                                     # the embedded demo clip, with J&F
    python run_vos.py input=clip.mp4 mask=first.png output=out/clip
    python run_vos.py dataset=davis2017 dataset.root=/data/DAVIS dataset.split=val output=out/davis
    python run_vos.py dataset=davis2016 dataset.root=... dataset.shard=0/4 evaluate=false   # one of 4 shards

Settings live in ``configs/`` (Hydra); ``model.config=<official SEEM yaml>`` and
``model.checkpoint=<path>`` drive any official configuration and weights. User
errors (missing checkpoint, bad input, a foreign output folder) end with one
clean message and exit code 2, before anything is written.
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import hydra
from omegaconf import DictConfig, OmegaConf

from eval.files import MaskFileError
from seem_core.checkpoint import CheckpointError, CheckpointNotFoundError, resolve_checkpoint
from seem_core.config import ConfigError
from vos.frames import FrameSourceError, open_frames
from vos.propagate import PropagationConfig
from vos.runner import DavisDataset, OutputDirError, first_annotation, mean_jf, prepare_output_dir, \
    run_benchmark, segment_video

USER_ERRORS = (CheckpointNotFoundError, CheckpointError, ConfigError, FrameSourceError, MaskFileError,
               OutputDirError, FileNotFoundError, ValueError)
DEMO_CLIP_SUBDIR = "clip"


def absolute(path: Any) -> str | None:
    """Paths are taken relative to the directory the command runs in (Hydra does not chdir here)."""
    return None if path is None else str(Path(path).expanduser().resolve())


def effective_config(cfg: DictConfig) -> dict[str, Any]:
    """The run's config as a plain dict with absolute paths: what ``config.yaml`` records."""
    config = OmegaConf.to_container(cfg, resolve=True)
    for key in ("input", "mask", "ground_truth", "output"):
        config[key] = absolute(config.get(key))
    if config.get("dataset"):
        config["dataset"]["root"] = absolute(config["dataset"]["root"])
    if config["model"].get("config"):
        config["model"]["config"] = absolute(config["model"]["config"])
    return config


def load_segmenter(config: dict[str, Any]):
    from vos.models import load_segmenter as segmenter_for

    return segmenter_for(config["model"], device=config["device"], precision=config["precision"],
                         short_side=config["short_side"])


def run(cfg: DictConfig) -> Any:
    """Run what ``cfg`` asks for; returns the video summary or the benchmark results."""
    config = effective_config(cfg)
    # Fail before any work when the weights cannot be had.
    config["model"]["checkpoint"] = str(resolve_checkpoint(config["model"]["checkpoint"]))
    propagation = PropagationConfig(**config["propagation"])
    if config.get("dataset"):
        return run_dataset(config, propagation)
    return run_video(config, propagation)


def run_video(config: dict[str, Any], propagation: PropagationConfig):
    output = Path(config["output"])
    demo = config["input"] is None
    if demo:
        from vos.demo_clip import describe_demo_clip, make_demo_clip

        clip = describe_demo_clip(output / DEMO_CLIP_SUBDIR)
        config.update(input=str(clip.frames_dir), mask=str(clip.first_mask),
                      ground_truth=config["ground_truth"] or str(clip.annotations_dir))
        prepare_output_dir(output, config, overwrite=config["overwrite"])  # before the clip is made in it
        make_demo_clip(clip.root)
    elif config["mask"] is None:
        raise ValueError("input is set but mask is not: give mask=<first-frame indexed PNG>")
    with open_frames(config["input"], stride=config["stride"], max_frames=config["max_frames"]) as frames:
        if not demo:  # bad input fails before anything is written
            first_annotation(config["mask"], frames.size)
            prepare_output_dir(output, config, overwrite=config["overwrite"])
        summary = segment_video(load_segmenter(config), frames, config["mask"], output,
                                propagation=propagation, stride=config["stride"], overlay=config["overlay"],
                                ground_truth=config["ground_truth"])
    print(f"{len(summary.names)} frames, objects {summary.object_ids}: masks in {summary.mask_dir}")
    if summary.overlay_path:
        print(f"overlay: {summary.overlay_path}")
    if summary.metrics is not None:
        print(f"J&F-Mean: {mean_jf(summary.metrics):.4f}")
    return summary


def run_dataset(config: dict[str, Any], propagation: PropagationConfig):
    spec = config["dataset"]
    dataset = DavisDataset(Path(spec["root"]), year=str(spec["year"]), split=spec["split"],
                           resolution=spec["resolution"])
    dataset.sequences()  # a wrong root or split fails before anything is written
    output = Path(config["output"])
    prepare_output_dir(output, config, overwrite=config["overwrite"])
    return run_benchmark(load_segmenter(config), dataset, output, propagation=propagation, shard=spec["shard"],
                         stride=config["stride"], max_frames=config["max_frames"], evaluate=config["evaluate"])


@hydra.main(version_base="1.3", config_path="configs", config_name="config")
def main(cfg: DictConfig) -> None:
    try:
        run(cfg)
    except USER_ERRORS as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:  # every file is written atomically: what is finished stays
        print("interrupted: finished files are kept; run the same command again to resume", file=sys.stderr)
        sys.exit(130)


if __name__ == "__main__":
    main()
