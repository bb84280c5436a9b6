"""Frame sources (vos.frames) on videos and folders the tests make, and on real DAVIS frames."""
import importlib.util
import logging
import sys
from fractions import Fraction

import av
import numpy as np
import pytest
from PIL import Image

from vos import frames as frames_module
from vos.frames import ArraySource, FrameSource, FrameSourceError, TruncatedVideoError, as_frame_source, open_frames

VIDEO_BACKENDS = ["decord", "pyav", "opencv"]
N_FRAMES, HEIGHT, WIDTH, FPS = 12, 64, 96, 25
# H.264 at crf 10 with 4:2:0 chroma: mean error about 1.5 grey levels on these frames.
CODEC_MEAN_TOLERANCE = 4.0


def synthetic_frames() -> list[np.ndarray]:
    """Smooth gradients (easy to encode) plus a white square that moves, so frames differ."""
    y, x = np.mgrid[0:HEIGHT, 0:WIDTH]
    result = []
    for i in range(N_FRAMES):
        frame = np.zeros((HEIGHT, WIDTH, 3), np.uint8)
        frame[..., 0] = x * 255 // WIDTH
        frame[..., 1] = y * 255 // HEIGHT
        frame[..., 2] = i * 20
        frame[8 + 2 * i : 24 + 2 * i, 8 + 3 * i : 24 + 3 * i] = 255
        result.append(frame)
    return result


def encode(path, frames, **container_options) -> None:
    with av.open(str(path), "w", options=container_options) as container:
        stream = container.add_stream("libx264", rate=Fraction(FPS))
        stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        stream.options = {"crf": "10"}
        stream.codec_context.gop_size = 5  # keyframes at 0, 5, 10: random access must seek between them
        for frame in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())


def mean_abs_diff(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(np.int16) - b.astype(np.int16)).mean())


@pytest.fixture(scope="module")
def originals():
    return synthetic_frames()


@pytest.fixture(scope="module")
def video(tmp_path_factory, originals):
    path = tmp_path_factory.mktemp("video") / "clip.mp4"
    encode(path, originals)
    return path


@pytest.fixture(scope="module", params=["mp4", "mkv"])
def clip(request, tmp_path_factory, originals):
    """The same frames in two containers: mp4 stores a frame count, Matroska does not."""
    path = tmp_path_factory.mktemp("video") / f"clip.{request.param}"
    encode(path, originals)
    return path


@pytest.fixture(scope="module")
def faststart_video(tmp_path_factory, originals):
    """Index (moov) at the front, so a truncated copy still opens and fails while decoding."""
    path = tmp_path_factory.mktemp("video") / "faststart.mp4"
    encode(path, originals, movflags="faststart")
    return path


@pytest.fixture(params=VIDEO_BACKENDS)
def backend(request):
    if request.param == "decord":
        pytest.importorskip("decord")
    return request.param


# --------------------------------------------------------------------------- videos


def test_backend_reads_every_frame_in_order(clip, originals, backend):
    with open_frames(clip, backend=backend) as source:
        assert source.backend == backend
        assert (len(source), source.size, source.fps) == (N_FRAMES, (HEIGHT, WIDTH), FPS)
        assert source.names == [f"{i:05d}" for i in range(N_FRAMES)]
        decoded = list(source)
    assert len(decoded) == N_FRAMES
    for i, frame in enumerate(decoded):
        assert frame.shape == (HEIGHT, WIDTH, 3) and frame.dtype == np.uint8
        errors = [mean_abs_diff(frame, original) for original in originals]
        assert errors[i] < CODEC_MEAN_TOLERANCE, f"frame {i}: mean error {errors[i]:.2f}"
        assert int(np.argmin(errors)) == i, f"frame {i} looks most like original {np.argmin(errors)}"


def test_backends_agree_within_codec_tolerance(clip):
    available = [b for b in VIDEO_BACKENDS if b != "decord" or importlib.util.find_spec("decord")]
    decoded = {b: list(open_frames(clip, backend=b)) for b in available}
    reference = decoded["pyav"]
    for name, frames in decoded.items():
        assert len(frames) == len(reference), name
        for i, (frame, expected) in enumerate(zip(frames, reference)):
            # Same bitstream, so only the YUV->RGB conversion may differ between decoders.
            assert mean_abs_diff(frame, expected) < 1.0, f"{name} frame {i}"
            assert np.abs(frame.astype(int) - expected).max() <= 8, f"{name} frame {i}"


def test_random_access_returns_the_streamed_frames(clip, backend):
    source = open_frames(clip, backend=backend)
    streamed = list(source)
    for i in [7, 3, 11, 0, 1, 2, 9, -1, -12]:
        np.testing.assert_array_equal(source[i], streamed[i], err_msg=f"{backend} frame {i}")
    with pytest.raises(IndexError, match="out of range"):
        source[N_FRAMES]
    with pytest.raises(IndexError):
        source[-N_FRAMES - 1]


def test_stride_and_max_frames_select_original_frames(clip, backend):
    everything = list(open_frames(clip, backend=backend))
    source = open_frames(clip, backend=backend, stride=3, max_frames=3)
    assert len(source) == 3
    assert source.names == ["00000", "00003", "00006"]
    for streamed, accessed, original in zip(source, [source[0], source[1], source[2]], [0, 3, 6]):
        np.testing.assert_array_equal(streamed, everything[original])
        np.testing.assert_array_equal(accessed, everything[original])
    assert open_frames(clip, backend=backend, stride=5).names == ["00000", "00005", "00010"]


def test_missing_backend_falls_back_and_logs_why(video, monkeypatch, caplog):
    monkeypatch.setitem(sys.modules, "decord", None)  # makes `import decord` fail
    with caplog.at_level(logging.INFO, logger="vos.frames"):
        source = open_frames(video)
    assert source.backend == "pyav"
    assert len(list(source)) == N_FRAMES
    assert any("decord is not installed" in r.message and "falling back to pyav" in r.message for r in caplog.records)


def test_backend_failing_on_a_file_falls_back_to_the_next(video, monkeypatch, caplog):
    def broken(path, stride, max_frames):
        raise FrameSourceError(f"{path}: PyAV cannot open this video (simulated failure)")

    monkeypatch.setitem(sys.modules, "decord", None)
    monkeypatch.setitem(frames_module.VIDEO_BACKENDS, "pyav", broken)
    with caplog.at_level(logging.WARNING, logger="vos.frames"):
        source = open_frames(video)
    assert source.backend == "opencv" and len(source) == N_FRAMES
    assert any("simulated failure" in r.message and "falling back to opencv" in r.message for r in caplog.records)


def test_corrupt_file_is_an_error_naming_it_and_each_backend(tmp_path):
    path = tmp_path / "noise.mp4"
    path.write_bytes(np.random.default_rng(0).integers(0, 256, 4000, dtype=np.uint8).tobytes())
    with pytest.raises(FrameSourceError, match=r"noise\.mp4: cannot read this video") as info:
        open_frames(path)
    for name in ("PyAV", "OpenCV"):
        assert name in str(info.value)


def test_truncated_video_is_an_error_naming_it(video, tmp_path, backend):
    # Default mp4 keeps its index at the end: half a file has no index at all.
    data = video.read_bytes()
    path = tmp_path / "half.mp4"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(FrameSourceError, match=r"half\.mp4: cannot read this video"):
        open_frames(path, backend=backend)


def test_video_cut_short_fails_while_decoding(faststart_video, tmp_path, backend):
    data = faststart_video.read_bytes()
    path = tmp_path / "cut.mp4"
    path.write_bytes(data[: int(len(data) * 0.75)])
    with pytest.raises(FrameSourceError, match=r"cut\.mp4: .*(truncated|cannot read)"):
        list(open_frames(path, backend=backend))  # the header promises more frames than there are
    with pytest.raises(FrameSourceError, match=r"cut\.mp4"):
        open_frames(path, backend=backend)[N_FRAMES - 1]


def test_verify_names_the_frame_where_decoding_breaks_and_allow_truncated_keeps_the_rest(
        faststart_video, originals, tmp_path):
    data = faststart_video.read_bytes()
    path = tmp_path / "cut.mp4"
    path.write_bytes(data[: int(len(data) * 0.75)])
    with pytest.raises(TruncatedVideoError) as info:
        open_frames(path, verify=True)
    err = info.value
    assert 0 < err.decoded < err.total == N_FRAMES and err.frame == err.decoded  # stride 1: index = count
    assert str(err).startswith(f"{path}: truncated or corrupt video: decoding breaks at frame {err.frame}")
    assert f"keep the {err.decoded} of {N_FRAMES} frames" in str(err) and "\n" not in str(err)
    kept = open_frames(path, allow_truncated=True)
    assert len(kept) == err.decoded and kept.names == open_frames(faststart_video).names[: err.decoded]
    for frame, original in zip(kept, originals):
        assert mean_abs_diff(frame, original) < CODEC_MEAN_TOLERANCE


class StopsAtFive(FrameSource):
    """A reader that decodes the first five frames of any file and then fails, like a broken decoder."""

    backend = "stops_at_five"

    def __init__(self, path, stride=1, max_frames=None):
        super().__init__(path, N_FRAMES, (HEIGHT, WIDTH), FPS, stride, max_frames)

    def _read(self, index):
        if index >= 5:
            raise FrameSourceError(f"{self.path}: cannot decode frame {index}")
        return np.zeros((HEIGHT, WIDTH, 3), np.uint8)


def test_verify_falls_back_to_the_next_reader_when_one_stops_early(video, originals, monkeypatch, caplog):
    monkeypatch.setattr(frames_module, "VIDEO_BACKENDS", {"stops_at_five": StopsAtFive,
                                                          "pyav": frames_module.PyAVSource})
    assert open_frames(video).backend == "stops_at_five"  # without verify the first reader that opens wins
    with caplog.at_level(logging.WARNING):
        source = open_frames(video, verify=True)
    assert source.backend == "pyav" and len(source) == N_FRAMES
    assert "stops_at_five decodes 5 of 12 frames" in caplog.text
    assert mean_abs_diff(source[N_FRAMES - 1], originals[-1]) < CODEC_MEAN_TOLERANCE
    monkeypatch.setattr(frames_module, "VIDEO_BACKENDS", {"stops_at_five": StopsAtFive})
    with pytest.raises(TruncatedVideoError, match="decoding breaks at frame 5"):
        open_frames(video, verify=True)
    assert len(open_frames(video, allow_truncated=True)) == 5
    with pytest.raises(TruncatedVideoError, match="decoding breaks at frame 6 .*keep the 3 of 6"):
        open_frames(video, stride=2, allow_truncated=False, verify=True)


def test_arrays_are_frame_sources_checked_when_made(originals):
    stack = np.stack(originals)
    source = as_frame_source(stack, stride=3, max_frames=3)
    assert isinstance(source, ArraySource) and source.size == (HEIGHT, WIDTH) and source.path is None
    assert source.names == ["00000", "00003", "00006"]
    np.testing.assert_array_equal(list(source)[2], originals[6])
    assert len(as_frame_source(list(originals))) == N_FRAMES
    with pytest.raises(FrameSourceError, match=r"frames array is \(12, 64, 96, 3\) float32"):
        as_frame_source(stack.astype(np.float32))
    with pytest.raises(FrameSourceError, match="frame 1 is 64x48 .* frame 0 is 64x96"):
        as_frame_source([originals[0], originals[1][:, :48]])
    with pytest.raises(FrameSourceError, match="frames list is empty"):
        as_frame_source([])
    with pytest.raises(FrameSourceError, match="cannot take frames from a dict"):
        as_frame_source({})
    with pytest.raises(FrameSourceError, match="already open"):
        as_frame_source(source, stride=2)
    assert as_frame_source(source) is source


def test_bad_arguments_and_paths(tmp_path, video):
    with pytest.raises(FrameSourceError, match=r"nothing\.mp4: no such"):
        open_frames(tmp_path / "nothing.mp4")
    image = tmp_path / "00000.jpg"
    Image.new("RGB", (4, 4)).save(image)
    with pytest.raises(FrameSourceError, match=r"00000\.jpg: is a single image"):
        open_frames(image)
    with pytest.raises(ValueError, match="unknown frame backend 'ffmpeg'"):
        open_frames(video, backend="ffmpeg")
    with pytest.raises(ValueError, match="stride"):
        open_frames(video, stride=0)
    with pytest.raises(ValueError, match="max_frames"):
        open_frames(video, max_frames=0)
    with pytest.raises(FrameSourceError, match="is a folder"):
        open_frames(tmp_path, backend="pyav")


# --------------------------------------------------------------------------- folders


def save_frames(folder, names, size=(6, 8)):
    folder.mkdir(parents=True, exist_ok=True)
    for value, name in enumerate(names):
        Image.fromarray(np.full((*size, 3), value * 10, np.uint8)).save(folder / name)


def test_folder_is_read_in_natural_order(tmp_path):
    save_frames(tmp_path, ["frame10.png", "frame8.png", "frame11.png", "frame9.png"])
    (tmp_path / "notes.txt").write_text("not a frame")
    source = open_frames(tmp_path)
    assert (source.backend, source.fps, source.size) == ("folder", None, (6, 8))
    # Written with grey levels 0, 10, 20, 30 in the listed order.
    assert source.names == ["frame8", "frame9", "frame10", "frame11"]
    assert [int(f[0, 0, 0]) for f in source] == [10, 30, 0, 20]
    assert int(source[-1][0, 0, 0]) == 20


def test_folder_stride_and_max_frames(tmp_path):
    save_frames(tmp_path, [f"{i:05d}.png" for i in range(7)])
    source = open_frames(tmp_path, stride=2, max_frames=3)
    assert source.names == ["00000", "00002", "00004"]
    assert [int(f[0, 0, 1]) for f in source] == [0, 20, 40]


def test_folder_with_a_gap_names_the_missing_frame(tmp_path):
    folder = tmp_path / "seq"
    save_frames(folder, ["00000.jpg", "00001.jpg", "00003.jpg"])
    with pytest.raises(FrameSourceError, match=r"seq: frame 00002 is missing \(numbering jumps from 00001 to 00003\)"):
        open_frames(folder)


def test_folder_numbering_without_padding_or_with_a_repeat(tmp_path):
    save_frames(tmp_path / "plain", ["img8.png", "img9.png", "img11.png"])
    with pytest.raises(FrameSourceError, match=r"plain: frame img10 is missing"):
        open_frames(tmp_path / "plain")
    save_frames(tmp_path / "repeat", ["0.png", "1.png", "01.png"])
    with pytest.raises(FrameSourceError, match=r"repeat: frames 01 and 1 have the same number"):
        open_frames(tmp_path / "repeat")


def test_folder_without_images_is_an_error(tmp_path):
    (tmp_path / "readme.txt").write_text("no frames here")
    with pytest.raises(FrameSourceError, match=r"no frame images"):
        open_frames(tmp_path)


def test_folder_with_duplicate_frames_is_an_error(tmp_path):
    save_frames(tmp_path, ["00000.jpg", "00000.png", "00001.png"])
    with pytest.raises(FrameSourceError, match=r"more than one image for frame '00000'"):
        open_frames(tmp_path)


def test_folder_of_mixed_sizes_or_a_corrupt_frame_is_refused_when_opened(tmp_path):
    save_frames(tmp_path, ["00000.png", "00001.png"])
    save_frames(tmp_path, ["00002.png"], size=(7, 8))
    with pytest.raises(FrameSourceError, match=r"00002\.png: image is 7x8 .* 00000.png is 6x8"):
        open_frames(tmp_path)
    (tmp_path / "00002.png").unlink()
    (tmp_path / "00002.png").write_bytes(b"not a png")
    with pytest.raises(FrameSourceError, match=r"00002\.png: cannot read image"):
        open_frames(tmp_path)
    assert len(open_frames(tmp_path, max_frames=2)) == 2  # only the selected frames are checked


def test_davis_sequence_frames_match_annotations(davis_root):
    from vos.masks import object_ids, read_mask

    images = davis_root / "JPEGImages" / "480p"
    annotations = davis_root / "Annotations" / "480p"
    for sequence in sorted(p.name for p in images.iterdir()):
        source = open_frames(images / sequence)
        masks = sorted(p.stem for p in (annotations / sequence).glob("*.png"))
        assert source.names == masks, sequence
        assert source.size == (480, 854), sequence
    source = open_frames(images / "blackswan")
    assert len(source) == 50
    with Image.open(images / "blackswan" / "00017.jpg") as image:
        np.testing.assert_array_equal(source[17], np.asarray(image.convert("RGB")))
    labels = read_mask(annotations / "blackswan" / "00000.png", expected_size=source.size)
    assert object_ids(labels) == [1]
