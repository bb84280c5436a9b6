"""The one entry point (also installed as ``seem-vos``): segment a video, or a benchmark, with SEEM.

    python run_vos.py                                     # the embedded demo clip, with J&F
    python run_vos.py input=clip.mp4 mask=first.png output=out/clip
    python run_vos.py input=clip.mp4 text="the black swan" output=out/swan       # objects from words
    python run_vos.py dataset=davis2017 dataset.root=/data/DAVIS dataset.split=val output=out/davis
    python run_vos.py dataset=davis2016 dataset.root=... dataset.shard=0/4 evaluate=false   # one of 4 shards
    python run_vos.py --help                              # every option

A run checks everything before it works: the options, then the checkpoint (loaded), then
the inputs (a video file is decoded end to end once), and only then claims the output
folder. A user mistake ends with one line naming the option or file and exit status 2,
with the output folder as it was; anything else is a bug and keeps its traceback.
"""
from __future__ import annotations

import functools
import logging
import sys
from collections.abc import Callable
from typing import Any

import hydra
from hydra.core.config_store import ConfigStore
from hydra.core.hydra_config import HydraConfig
from hydra.errors import HydraException
from omegaconf import DictConfig
from omegaconf.errors import OmegaConfBaseException

from eval import EvaluationError, format_global_table
from eval.files import MaskFileError
from seem_core.checkpoint import CheckpointError, CheckpointNotFoundError
from seem_core.config import ConfigError
from seem_core.spatial_prompts import PromptError
from vos.benchmark import check_dataset_prompts, dataset_layout, run_benchmark
from vos.errors import SettingsError
from vos.frames import FrameSourceError
from vos.outputs import OutputDirError, prepare_output_dir
from vos.settings import RunSettings, help_config, run_settings
from vos.single_video import check_ground_truth, mean_jf, segment_video
from vos.tracker import Track, Tracker, load

USER_ERRORS = (CheckpointNotFoundError, CheckpointError, ConfigError, EvaluationError, FrameSourceError,
               MaskFileError, OutputDirError, PromptError, SettingsError)
CHECKPOINT_OPTION = "model.checkpoint"
DEMO_CLIP_SUBDIR = "clip"

log = logging.getLogger("run_vos")
ConfigStore.instance().store(group="hydra/help", name="seem_vos", node=help_config())


def tracker_factory(settings: RunSettings, device: str | None = None) -> Callable[[], Tracker]:
    """What loads the run's model (here, or in each Ray worker, on ``device``)."""
    return functools.partial(load, settings.model, device=device or settings.device, precision=settings.precision,
                             winograd=settings.winograd, short_side=settings.short_side,
                             checkpoint_option=CHECKPOINT_OPTION,
                             **vars(settings.propagation))


def load_tracker(settings: RunSettings) -> Tracker:
    """The model, loaded now (a wrong checkpoint fails before any work)."""
    return tracker_factory(settings)()


def recorded_config(settings: RunSettings, tracker: Tracker) -> dict[str, Any]:
    """What ``config.yaml`` records: the settings this run used, every path absolute."""
    config = {"output": str(settings.output), "model": tracker.description["model"]}
    if settings.dataset is not None:
        spec = settings.dataset
        shard = None if spec.shard == (0, 1) else "/".join(map(str, spec.shard))
        dataset = {"name": spec.name, "root": str(spec.root), **spec.options, "shard": shard}
        config.update(dataset=dataset, evaluate=settings.evaluate)
    else:
        config.update(input=str(settings.input), mask=settings.mask and str(settings.mask), text=settings.text,
                      prompts=settings.prompts and str(settings.prompts),
                      ground_truth=settings.ground_truth and str(settings.ground_truth), overlay=settings.overlay)
    config.update(device=settings.device, precision=settings.precision, winograd=settings.winograd,
                  short_side=settings.short_side, stride=settings.stride, max_frames=settings.max_frames,
                  max_objects=settings.max_objects,
                  allow_truncated=settings.allow_truncated, propagation=vars(settings.propagation))
    if settings.save_scores:  # recorded only when on: folders of runs from before the option still match
        config["save_scores"] = True
    return config


def run(cfg: DictConfig) -> Any:
    """Run what ``cfg`` asks for; returns the video summary or the benchmark results."""
    dataset_name = _chosen("dataset")
    settings = run_settings(cfg, dataset_name)
    tracker = load_tracker(settings)
    if settings.dataset is not None:
        return run_dataset(settings, tracker)
    return run_video(settings, tracker)


def run_video(settings: RunSettings, tracker: Tracker):
    output = settings.output
    if settings.demo:
        from vos.demo_clip import describe_demo_clip, make_demo_clip

        clip = describe_demo_clip(output / DEMO_CLIP_SUBDIR)
        settings = _with_demo_inputs(settings, clip)
        prepare_output_dir(output, recorded_config(settings, tracker), overwrite=settings.overwrite)
        make_demo_clip(clip.root)  # in the claimed folder
        track = _track(settings, tracker)
    else:
        if settings.mask is None and settings.text is None and settings.prompts is None:
            raise SettingsError("input is set but mask is not: give mask=<label PNG of the first frame> "
                                "(or text=<what to segment>, or prompts=<clicks JSON file>)")
        track = _track(settings, tracker)  # opens and checks the video and the mask
        if settings.ground_truth is not None:
            check_ground_truth(settings.ground_truth, track)
        prepare_output_dir(output, recorded_config(settings, tracker), overwrite=settings.overwrite)
    summary = segment_video(track, output, overlay=settings.overlay, ground_truth=settings.ground_truth,
                            overwrite=settings.overwrite, save_scores=settings.save_scores)
    print(f"{len(summary.names)} frames, objects {summary.object_ids}: masks in {summary.mask_dir}")
    if summary.overlay_path:
        print(f"overlay: {summary.overlay_path}")
    if summary.metrics is not None:
        print(f"J&F-Mean: {mean_jf(summary.metrics):.4f}")
    return summary


def _track(settings: RunSettings, tracker: Tracker) -> Track:
    return tracker.track(settings.input, settings.mask, text=settings.text, prompts=settings.prompts,
                         stride=settings.stride, max_frames=settings.max_frames, max_objects=settings.max_objects,
                         allow_truncated=settings.allow_truncated, logits=settings.save_scores)


def _with_demo_inputs(settings: RunSettings, clip) -> RunSettings:
    from dataclasses import replace

    return replace(settings, input=clip.frames_dir, mask=None if settings.prompts else clip.first_mask,
                   ground_truth=settings.ground_truth or clip.annotations_dir)


def run_dataset(settings: RunSettings, tracker: Tracker):
    spec = settings.dataset
    if settings.text is not None:
        raise SettingsError("text: a benchmark takes its objects from the dataset (its annotations, or its "
                            "expressions for dataset=refyoutubevos / refdavis17); run one video with input= text=")
    if spec.layout == "referring":
        if settings.prompts is not None:
            raise SettingsError("prompts: referring datasets take their objects from their expressions")
        return run_referring_dataset(settings, tracker)
    layout = dataset_layout(spec.layout, spec.root, spec.options)
    layout.check()  # a wrong root, split or resolution fails before anything is written
    prompts = None
    if settings.prompts is not None:
        if settings.save_scores:
            raise SettingsError("prompts: save_scores is not available for sequences started from clicks")
        prompts = check_dataset_prompts(settings.prompts, layout, settings.stride, settings.max_frames)
    prepare_output_dir(settings.output, recorded_config(settings, tracker), overwrite=settings.overwrite)
    results = run_benchmark(tracker, layout, settings.output, shard=spec.shard, stride=settings.stride,
                            max_frames=settings.max_frames, max_objects=settings.max_objects,
                            allow_truncated=settings.allow_truncated, overwrite=settings.overwrite,
                            evaluate=settings.evaluate, executor=settings.executor,
                            make_tracker=tracker_factory(settings, worker_device(settings)),
                            save_scores=settings.save_scores, prompts=prompts)
    if results is not None:
        print(format_global_table(results))
    return results


def run_referring_dataset(settings: RunSettings, tracker: Tracker) -> dict:
    """Ref-YouTube-VOS / Ref-DAVIS17: one text-prompted track per expression (vos.referring)."""
    from eval.referring import ReferringLayout
    from vos.referring import run_referring

    spec = settings.dataset
    if spec.shard != (0, 1):
        raise SettingsError("dataset.shard: referring datasets run every expression in one process")
    layout = ReferringLayout(spec.root, **spec.options)
    layout.expressions()  # a wrong root or a broken meta_expressions.json fails before anything is written
    prepare_output_dir(settings.output, recorded_config(settings, tracker), overwrite=settings.overwrite)
    results = run_referring(tracker, layout, settings.output, max_frames=settings.max_frames,
                            overwrite=settings.overwrite, evaluate=settings.evaluate)
    print(f"{len(results['expressions'])} expressions, {results['scored']} scored"
          + (f": J&F-Mean {results['J&F-Mean']:.4f}" if results["scored"] else ""))
    return results


def worker_device(settings: RunSettings) -> str:
    """Ray workers with GPUs run on CUDA wherever they are; CPU workers use this run's device."""
    return "cuda" if settings.executor.gpus_per_worker > 0 else settings.device


def _chosen(group: str) -> str | None:
    """The option chosen for a config group on this run (e.g. ``davis2017`` for ``dataset``)."""
    if not HydraConfig.initialized():
        return None
    return HydraConfig.get().runtime.choices.get(group)


@hydra.main(version_base="1.3", config_path="pkg://vos.configs", config_name="config")
def _hydra_main(cfg: DictConfig) -> None:
    try:
        run(cfg)
    except USER_ERRORS as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:  # every file is written atomically: what is finished stays
        print("interrupted: finished files are kept; run the same command again to resume", file=sys.stderr)
        sys.exit(130)


def check_overrides(argv: list[str]) -> None:
    """Compose the config from the command line first, so a bad option is one line and exit 2.

    (Hydra itself would report it with exit status 1.) Runs that use Hydra's own flags
    (``--help``, ``-m``, ...) are left to Hydra.
    """
    if any(arg.startswith("-") for arg in argv):
        return
    from hydra import compose, initialize_config_module

    try:
        with initialize_config_module("vos.configs", version_base="1.3"):
            compose("config", overrides=argv)
    except (HydraException, OmegaConfBaseException) as err:
        message = " ".join(str(err).split())
        print(f"error: {message}", file=sys.stderr)
        sys.exit(2)


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    check_overrides(sys.argv[1:])
    _hydra_main()


if __name__ == "__main__":
    main()
