"""run_vos.py through Hydra: the demo with the tiny random model, and every bad input refused before any work.

Most refusals run in-process (``run_vos.run`` raises the user error that ``main`` turns into
exit status 2); the command-line wrapper itself is checked in subprocesses: one line on
stderr, exit 2, no traceback, the output folder as it was.
"""
from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from hydra import compose, initialize_config_module
from PIL import Image

import run_vos
from eval.files import MaskFileError, read_label_png, write_label_png
from seem_core.checkpoint import CheckpointError
from vos.errors import SettingsError
from vos.frames import FrameSourceError
from vos.outputs import OutputDirError

ROOT = Path(__file__).resolve().parents[1]
TINY = ["model=seem_tiny_random", "short_side=64"]


def config_for(overrides: list[str]):
    with initialize_config_module("vos.configs", version_base="1.3"):
        return compose(config_name="config", overrides=overrides)


def run(overrides: list[str]):
    return run_vos.run(config_for(overrides))


def cli(args: list[str], cwd: Path, **env) -> subprocess.CompletedProcess:
    environment = {**os.environ, "HF_HUB_OFFLINE": "1", **env}
    return subprocess.run([sys.executable, str(ROOT / "run_vos.py"), *args], cwd=cwd, env=environment,
                          capture_output=True, text=True, timeout=300)


def snapshot(folder: Path) -> dict[str, int]:
    return {str(p.relative_to(folder)): p.stat().st_mtime_ns for p in sorted(folder.rglob("*"))} \
        if folder.exists() else {}


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    from vos.demo_clip import make_demo_clip

    return make_demo_clip(tmp_path_factory.mktemp("clip"), num_frames=4, size=(48, 64))


def test_demo_with_the_tiny_random_model_and_its_saved_config(tmp_path, capsys):
    out = tmp_path / "demo"
    summary = run(TINY + [f"output={out}", "max_frames=4"])
    assert "J&F-Mean" in capsys.readouterr().out
    assert sorted(p.name for p in (out / "masks").glob("*.png")) == [f"{i:05d}.png" for i in range(4)]
    np.testing.assert_array_equal(read_label_png(out / "masks/00000.png"),
                                  read_label_png(out / "clip/Annotations/00000.png"))
    assert (out / "overlay.mp4").is_file() and summary.metrics is not None
    saved = yaml.safe_load((out / "config.yaml").read_text())
    assert saved["input"] == str(out / "clip/JPEGImages") and saved["model"]["checkpoint"] == "random"
    assert saved["device"] == "cpu" and "dataset" not in saved and "evaluate" not in saved  # only what was used
    assert json.loads((out / "summary.json").read_text())["frames"] == 4

    before = snapshot(out)
    with pytest.raises(OutputDirError, match="propagation"):
        run(TINY + [f"output={out}", "max_frames=4", "propagation.memory=first+previous"])
    assert snapshot(out) == before


def test_saved_config_records_paths_absolutely(clip, tmp_path, monkeypatch):
    monkeypatch.chdir(clip.root.parent)
    relative = os.path.relpath(clip.root, clip.root.parent)
    out = tmp_path / "rel"
    run(TINY + [f"input={relative}/JPEGImages", f"mask={relative}/Annotations/00000.png", f"output={out}",
                "overlay=false"])
    saved = yaml.safe_load((out / "config.yaml").read_text())
    assert saved["input"] == str(clip.frames_dir) and saved["mask"] == str(clip.first_mask)
    assert saved["output"] == str(out) and Path(saved["input"]).is_absolute()


@pytest.mark.parametrize("override, message", [
    ("short_side=abc", "short_side must be an integer, got 'abc'"),
    ("short_side=0", "short_side must be >= 32"),
    ("stride=0", "stride must be >= 1"),
    ("max_frames=-2", "max_frames must be >= 1"),
    ("overwrite=maybe", "overwrite must be true or false"),
    ("device=tpu", "device must be one of auto, cpu, cuda"),
    ("precision=fp8", "precision must be one of fp32"),
    ("winograd=sometimes", "winograd must be true or false, got 'sometimes'"),
    ("propagation.memory=everything", "propagation.memory must be one of first, first+previous"),
    ("propagation.threshold=high", "propagation.threshold must be a number"),
    ("dataset=davis2017", "dataset.root is required"),
    ("dataset.shard=2/2", None),
])
def test_bad_options_are_refused_naming_the_option(override, message, tmp_path):
    if override.startswith("dataset.shard"):
        override, message = ["dataset=davis2016", f"dataset.root={tmp_path}", override], "needs 0 <= i < n"
    else:
        override = [override]
    out = tmp_path / "out"
    with pytest.raises(SettingsError, match=message.replace("(", r"\(").replace("+", r"\+")):
        run(TINY + override + [f"output={out}"])
    assert not out.exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal of CUDA on a machine without it")
def test_cuda_without_cuda_and_fp16_on_cpu_are_refused(tmp_path):
    with pytest.raises(SettingsError, match="device=cuda: this machine has no CUDA device"):
        run(TINY + ["device=cuda", f"output={tmp_path}"])
    with pytest.raises(SettingsError, match="precision=fp16"):
        run(TINY + ["precision=fp16", f"output={tmp_path / 'x'}"])


def test_a_wrong_checkpoint_leaves_no_config_that_would_refuse_the_corrected_run(clip, tmp_path):
    wrong = tmp_path / "other_model.pt"
    torch.save({"backbone.unrelated.weight": torch.zeros(3)}, wrong)
    out = tmp_path / "out"
    args = [f"input={clip.frames_dir}", f"mask={clip.first_mask}", f"output={out}", "overlay=false"]
    with pytest.raises(CheckpointError, match="other_model.pt: checkpoint does not fit the model"):
        run(TINY + [f"model.checkpoint={wrong}"] + args)
    assert not out.exists()
    run(TINY + args)  # the corrected run takes the folder
    assert (out / "config.yaml").is_file()


def test_bad_inputs_fail_before_the_output_folder_is_touched(clip, tmp_path):
    out = tmp_path / "out"
    write_label_png(out / "keep.png", np.ones((2, 2), np.uint8))  # an earlier file that must survive
    before = snapshot(out)
    jpeg = tmp_path / "first.jpg"
    Image.open(clip.first_mask).convert("L").save(jpeg)
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    for i, size in enumerate([(64, 48), (64, 48), (32, 24)]):
        Image.new("RGB", size).save(mixed / f"{i:05d}.jpg")
    cases = [
        ([f"input={clip.frames_dir}", f"mask={jpeg}"], MaskFileError, "first.jpg: is a JPEG image"),
        ([f"input={clip.frames_dir}"], SettingsError, "mask is not"),
        ([f"input={mixed}", f"mask={clip.first_mask}"], FrameSourceError, "00002.jpg"),
        ([f"input={tmp_path / 'absent.mp4'}", f"mask={clip.first_mask}"], FrameSourceError, "absent.mp4"),
        ([f"input={clip.frames_dir}", f"mask={clip.first_mask}", f"ground_truth={tmp_path / 'nogt'}"],
         MaskFileError, "nogt: ground-truth folder not found"),
    ]
    for args, error, message in cases:
        with pytest.raises(error, match=message):
            run(TINY + args + [f"output={out}", "overwrite=true"])
        assert snapshot(out) == before


def cut_video(clip, path: Path, keep: float = 0.7) -> Path:
    """The clip's frames as a faststart mp4 (index first), cut short: it opens and breaks while decoding."""
    import av

    frames = [np.asarray(Image.open(p).convert("RGB")) for p in sorted(clip.frames_dir.iterdir())] * 3
    whole = path.with_name("whole.mp4")
    with av.open(str(whole), "w", options={"movflags": "faststart"}) as container:
        stream = container.add_stream("libx264", rate=25)
        stream.height, stream.width = frames[0].shape[:2]
        stream.pix_fmt, stream.options = "yuv420p", {"crf": "10"}
        for frame in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())
    data = whole.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])
    return path


def test_truncated_video_stops_before_writing_or_keeps_what_decodes_when_allowed(clip, tmp_path):
    video = cut_video(clip, tmp_path / "cut.mp4")
    out = tmp_path / "out"
    args = TINY + [f"input={video}", f"mask={clip.first_mask}", f"output={out}", "overlay=false"]
    with pytest.raises(FrameSourceError, match=r"cut\.mp4: truncated or corrupt video: decoding breaks at frame (\d+)") \
            as info:
        run(args)
    assert not out.exists()
    run(args + ["allow_truncated=true"])
    masks = sorted((out / "masks").glob("*.png"))
    assert len(masks) == info.value.decoded > 0


def test_text_starts_objects_from_words_inline_or_from_a_json_file(clip, tmp_path):
    from vos.tracker import load

    texts = {1: "the red ball", 2: "the blue square"}
    path = tmp_path / "texts.json"
    path.write_text(json.dumps({str(k): v for k, v in texts.items()}))
    expected = [labels for _, labels in load("seem_tiny_random", device="cpu", short_side=64)
                .track(clip.frames_dir, text=texts)]
    for n, value in enumerate([str(path), '{1: "the red ball", 2: "the blue square"}']):
        out = tmp_path / f"out{n}"
        summary = run(TINY + [f"input={clip.frames_dir}", f"text={value!r}" if n else f"text={value}",
                              f"output={out}", "overlay=false"])
        assert summary.object_ids == [1, 2]
        for name, labels in zip(summary.names, expected):
            np.testing.assert_array_equal(read_label_png(out / "masks" / f"{name}.png"), labels)
        recorded = yaml.safe_load((out / "config.yaml").read_text())
        assert recorded["text"] == texts and recorded["mask"] is None
    summary = run(TINY + [f"input={clip.frames_dir}", "text=the red ball", f"output={tmp_path / 'one'}",
                          "overlay=false"])
    assert summary.object_ids == [1]


def test_bad_texts_are_refused_before_the_output_folder_is_touched(clip, tmp_path):
    bad_json = tmp_path / "bad.json"
    bad_json.write_text("{1: ")
    out = tmp_path / "out"
    cases = [(f"text={bad_json}", "bad.json: not valid JSON"), (f"text={tmp_path / 'none.json'}", "cannot read"),
             ("text='{0: \"x\"}'", "outside 1..254"), ("text=''", "non-empty")]
    for option, message in cases:
        with pytest.raises(SettingsError, match=message):
            run(TINY + [f"input={clip.frames_dir}", option, f"output={out}"])
        assert not out.exists()


def test_prompts_file_on_a_davis_sequence(davis_root, tmp_path):
    frames = davis_root / "JPEGImages" / "480p" / "blackswan"
    truth = read_label_png(davis_root / "Annotations" / "480p" / "blackswan" / "00000.png")
    rows, cols = np.nonzero(truth)
    prompts = tmp_path / "clicks.json"
    prompts.write_text(json.dumps([
        {"object": 1, "frame": 0, "box": [int(cols.min()), int(rows.min()), int(cols.max()), int(rows.max())]},
        {"object": 1, "frame": 2, "points": [[int(cols.mean()), int(rows.mean())]], "labels": [1]},
    ]))
    out = tmp_path / "out"
    summary = run(TINY + [f"input={frames}", f"prompts={prompts}", "max_frames=3", f"output={out}", "overlay=false",
                          f"ground_truth={davis_root / 'Annotations' / '480p' / 'blackswan'}"])
    assert summary.names == ["00000", "00001", "00002"] and summary.object_ids == [1]
    assert read_label_png(out / "masks" / "00000.png")[int(rows.mean()), int(cols.mean())] in (0, 1)
    recorded = yaml.safe_load((out / "config.yaml").read_text())
    assert recorded["prompts"] == str(prompts) and recorded["mask"] is None
    bad = tmp_path / "bad.json"
    bad.write_text('[{"object": 1, "frame": 0, "points": [[5000, 1]], "labels": [1]}]')
    with pytest.raises(SettingsError, match=r"bad.json: prompt 0 .*outside the 854x480 frame"):
        run(TINY + [f"input={frames}", f"prompts={bad}", f"output={tmp_path / 'out2'}"])
    assert not (tmp_path / "out2").exists()


def test_dataset_prompts_start_the_listed_sequences_from_clicks(davis_root, tmp_path):
    from vos.tracker import load

    boxed = [{"object": 1, "frame": 0, "box": [300, 150, 500, 350]}]
    prompts = tmp_path / "clicks.json"
    prompts.write_text(json.dumps({"blackswan": boxed}))
    out = tmp_path / "out"
    run(TINY + ["dataset=davis2016", f"dataset.root={davis_root}", f"prompts={prompts}", "max_frames=3",
                f"output={out}"])
    truth = davis_root / "Annotations" / "480p"
    clicked = read_label_png(out / "blackswan" / "00000.png")
    assert not np.array_equal(clicked, read_label_png(truth / "blackswan" / "00000.png"))
    expected = load("seem_tiny_random", device="cpu", short_side=64).track(
        davis_root / "JPEGImages" / "480p" / "blackswan", prompts=boxed, max_frames=3)
    for frame in expected:
        np.testing.assert_array_equal(read_label_png(out / "blackswan" / f"{frame.name}.png"), frame.labels)
    other = sorted(p.name for p in out.iterdir() if p.is_dir() and p.name != "blackswan")[0]
    np.testing.assert_array_equal(read_label_png(out / other / "00000.png"), read_label_png(truth / other / "00000.png"))
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"no-such-sequence": [{"object": 1, "frame": 0, "box": [1, 1, 5, 5]}]}))
    with pytest.raises(SettingsError, match="sequence 'no-such-sequence' is not in this dataset split"):
        run(TINY + ["dataset=davis2016", f"dataset.root={davis_root}", f"prompts={bad}", f"output={tmp_path / 'o2'}"])
    assert not (tmp_path / "o2").exists()


def test_a_folder_of_video_files_with_one_mask_each(clip, tmp_path):
    from vos.tracker import load

    root = tmp_path / "videos"
    root.mkdir()
    video = cut_video(clip, root / "clip.mp4", keep=1.0)
    (root / "whole.mp4").unlink()  # cut_video's uncut copy
    (root / "clip.png").write_bytes(clip.first_mask.read_bytes())
    out = tmp_path / "out"
    run(TINY + ["dataset=videos", f"dataset.root={root}", f"output={out}"])
    expected = list(load("seem_tiny_random", device="cpu", short_side=64).track(video, clip.first_mask))
    assert sorted(p.name for p in (out / "clip").glob("*.png")) == [f"{i:05d}.png" for i in range(len(expected))]
    for frame in expected:
        np.testing.assert_array_equal(read_label_png(out / "clip" / f"{frame.name}.png"), frame.labels)
    (root / "clip.png").unlink()
    with pytest.raises(run_vos.USER_ERRORS, match="clip.png not found"):
        run(TINY + ["dataset=videos", f"dataset.root={root}", f"output={tmp_path / 'o2'}"])
    assert not (tmp_path / "o2").exists()


def test_a_dataset_root_that_is_not_a_dataset_is_named(tmp_path):
    with pytest.raises(Exception, match=str(tmp_path / "nowhere")) as caught:
        run(TINY + ["dataset=davis2017", f"dataset.root={tmp_path / 'nowhere'}", f"output={tmp_path / 'out'}"])
    assert isinstance(caught.value, run_vos.USER_ERRORS)
    assert not (tmp_path / "out").exists()


def test_user_errors_are_the_projects_own_types():
    """A ValueError from numpy or torch is a bug, not a user mistake: it must keep its traceback."""
    assert ValueError not in run_vos.USER_ERRORS and FileNotFoundError not in run_vos.USER_ERRORS


def test_command_line_user_errors_are_one_line_and_exit_2(clip, tmp_path):
    out = tmp_path / "out"
    cases = [
        ["no_such_option=1"],  # Hydra composition
        ["short_side=abc"],  # validation
        [f"input={clip.frames_dir}", f"mask={tmp_path / 'absent.png'}"],  # input
    ]
    for args in cases:
        result = cli(TINY + args + [f"output={out}"], cwd=tmp_path)
        assert result.returncode == 2, result.stderr
        assert result.stderr.startswith("error: ") and len(result.stderr.strip().splitlines()) == 1, result.stderr
        assert "Traceback" not in result.stderr
    assert not out.exists()
    assert not {"outputs", ".hydra", "run_vos.log"} & set(os.listdir(tmp_path))  # Hydra left nothing in cwd


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write into read-only folders")
def test_read_only_output_folder_is_one_line(clip, tmp_path):
    out = tmp_path / "locked"
    out.mkdir()
    out.chmod(stat.S_IRUSR | stat.S_IXUSR)
    try:
        with pytest.raises(OutputDirError, match="locked: cannot write"):
            run(TINY + [f"input={clip.frames_dir}", f"mask={clip.first_mask}", f"output={out}"])
    finally:
        out.chmod(stat.S_IRWXU)


def test_unwritable_output_path_is_one_line(clip, tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    with pytest.raises(OutputDirError, match="a_file"):
        run(TINY + [f"input={clip.frames_dir}", f"mask={clip.first_mask}", f"output={blocker / 'out'}"])


def test_released_checkpoint_offline_fails_at_once_naming_the_option(tmp_path):
    started = time.perf_counter()
    result = cli([f"output={tmp_path / 'out'}"], cwd=tmp_path, HF_HOME=str(tmp_path / "hf"))
    seconds = time.perf_counter() - started
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "https://huggingface.co/xdecoder/SEEM/resolve/main/seem_focalt_v0.pt" in result.stderr
    assert "model.checkpoint=" in result.stderr
    assert not (tmp_path / "out").exists()
    assert seconds < 60, "the hub client's retries should not run when offline"


def test_help_describes_every_option_from_the_config_comments(tmp_path):
    result = cli(["--help"], cwd=tmp_path)
    assert result.returncode == 0
    config = (ROOT / "configs" / "config.yaml").read_text()
    for key in ("input", "mask", "short_side", "max_objects", "allow_truncated", "propagation.memory",
                "dataset.root", "dataset.shard"):
        assert key in result.stdout, key
    assert "label PNG of the first frame" in result.stdout and "seem_tiny_random" in result.stdout
    assert "# the dataset folder" not in result.stdout and "root: ???" in (ROOT / "configs/dataset/davis2017.yaml").read_text()
    assert "short_side" in config


def test_ctrl_c_ends_with_a_short_message_and_no_traceback(clip, tmp_path):
    script = ("import runpy, vos.single_video\n"
              "def interrupted(*args, **kwargs):\n"
              "    raise KeyboardInterrupt\n"
              "vos.single_video.Track.save = interrupted\n"
              f"runpy.run_path({str(ROOT / 'run_vos.py')!r}, run_name='__main__')\n")
    args = TINY + [f"input={clip.frames_dir}", f"mask={clip.first_mask}", f"output={tmp_path / 'out'}"]
    result = subprocess.run([sys.executable, "-c", script, *args], cwd=ROOT, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 130
    assert "interrupted" in result.stderr and "resume" in result.stderr and "Traceback" not in result.stderr
