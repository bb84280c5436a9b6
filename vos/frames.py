"""Video frames behind one interface: a folder of images, a video file or arrays in memory.

The pipeline only needs "frame ``i`` as RGB uint8" and "all frames in order", so every
source offers exactly that (plus length, size, fps and one name per frame) and decodes
lazily: a long video is streamed, never held whole in memory. Video files are read by
decord, PyAV or OpenCV; ``open_frames`` tries them in that order and falls back to the
next one when a backend is not installed or cannot read the file, logging why.

Every check that can fail runs when a source is opened, so a run stops before it writes
anything: a folder's frames must all have one size (read from the image headers), and
with ``verify=True`` a video is decoded once end to end, falling back to the next reader
when one cannot decode every frame (a truncated or corrupt file).
"""
from __future__ import annotations

import bisect
import logging
import os
import re
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from eval.files import IMAGE_ERRORS

logger = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")


class FrameSourceError(ValueError):
    """A frame folder, video or array that cannot be read; the message names it and the problem."""


class TruncatedVideoError(FrameSourceError):
    """No reader decodes every selected frame of a video: it is truncated or corrupt.

    ``frame`` is the video's frame index where decoding broke in the reader that got
    furthest, and ``decoded`` how many selected frames decode before it (what
    ``allow_truncated=True`` keeps), out of ``total`` selected. ``reason`` says which
    readers were tried and why the furthest one stopped.
    """

    def __init__(self, path: Path, frame: int, decoded: int, total: int, reason: str):
        self.path, self.frame, self.decoded, self.total = path, frame, decoded, total
        keep = (f"set allow_truncated to keep the {decoded} of {total} frames before it" if decoded
                else "no frame decodes")
        super().__init__(f"{path}: truncated or corrupt video: decoding breaks at frame {frame} ({reason}); {keep}")


class FrameSource:
    """Frames of one video, selected by stride and a maximum count.

    Subclasses decode one frame by its index in the original video (``_read``) and may
    override ``_stream`` with a faster sequential decoder. Indexing and iteration are
    over the *selected* frames; ``names`` tells which original frame each one is.
    ``path`` is None for frames that come from memory.
    """

    backend: str = ""

    def __init__(
        self,
        path: Path | None,
        total: int,
        size: tuple[int, int],
        fps: float | None,
        stride: int,
        max_frames: int | None,
        stems: list[str] | None = None,
    ):
        self.path = path
        self.where = str(path) if path is not None else "frames array"
        self.size = size
        self.fps = fps
        self._total = total
        self._indices = range(0, total, stride)[:max_frames]
        self.names = [stems[i] if stems else f"{i:05d}" for i in self._indices]

    def __len__(self) -> int:
        return len(self._indices)

    def __getitem__(self, i: int) -> np.ndarray:
        if not isinstance(i, (int, np.integer)):
            raise TypeError(f"frame index must be an integer, got {type(i).__name__}")
        try:
            index = self._indices[i]
        except IndexError:
            raise IndexError(f"{self.where}: frame {i} out of range for {len(self)} frames") from None
        return self._checked(self._read(index), index)

    def __iter__(self) -> Iterator[np.ndarray]:
        count = 0
        for index, frame in self._stream(self._indices):
            yield self._checked(frame, index)
            count += 1
        if count < len(self):  # a reader that stops quietly short of what the container declares
            raise FrameSourceError(
                f"{self.where}: {self.backend} stopped after {count} of {len(self)} frames (truncated or corrupt file?)"
            )

    def __enter__(self) -> FrameSource:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Release decoder resources; sources without any need not override it."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.where!r}, frames={len(self)}, size={self.size}, fps={self.fps})"

    def first_undecodable(self) -> tuple[int, FrameSourceError | None]:
        """Decode the selected frames once in order, keeping none: (how many decode, the error that stopped it)."""
        decoded = 0
        try:
            for _ in self:
                decoded += 1
        except FrameSourceError as err:
            return decoded, err
        return decoded, None

    def keep_first(self, count: int) -> None:
        """Limit the selection to its first ``count`` frames (those that decode, after a failed check)."""
        self._indices = self._indices[:count]
        self.names = self.names[:count]

    def _read(self, index: int) -> np.ndarray:
        raise NotImplementedError

    def _stream(self, indices: range) -> Iterator[tuple[int, np.ndarray]]:
        """Yield ``(index, frame)`` for ``indices`` in order; random access by default."""
        for index in indices:
            yield index, self._read(index)

    def _checked(self, frame: np.ndarray, index: int) -> np.ndarray:
        if frame.shape != (*self.size, 3) or frame.dtype != np.uint8:
            raise FrameSourceError(
                f"{self.where}: frame {index} is {frame.shape} {frame.dtype}; "
                f"expected {(*self.size, 3)} uint8 like the first frame"
            )
        return frame

    def _ended_early(self, decoded: int) -> FrameSourceError:
        return FrameSourceError(
            f"{self.where}: video ended after {decoded} of {self._total} frames (truncated or corrupt file?)"
        )


# --------------------------------------------------------------------------- folders


def natural_key(name: str) -> list:
    """Sort key that orders "frame2" before "frame10"."""
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", name)]


def list_frame_files(folder: Path) -> list[Path]:
    """Image files of a frame folder in natural order, checked for gaps in the numbering.

    A gap (00000, 00001, 00003) means a frame is missing, which would silently shift
    every later frame against its annotation, so it is an error.
    """
    files = sorted(
        (p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()),
        key=lambda p: (natural_key(p.name), p.name),
    )
    if not files:
        raise FrameSourceError(f"{folder}: no frame images ({', '.join(IMAGE_SUFFIXES)}) in this folder")
    stems = [p.stem for p in files]
    repeated = sorted(stem for stem, count in Counter(stems).items() if count > 1)
    if repeated:
        raise FrameSourceError(f"{folder}: more than one image for frame {repeated[0]!r}")
    check_numbering(folder, stems)
    return files


def check_numbering(folder: Path, stems: list[str]) -> None:
    """Fail on a missing or repeated frame number when all stems are ``<prefix><number>``.

    The first two numbers set the step: a folder of every 5th frame (YouTube-VOS's
    ``valid``: 00000, 00005, ...) is whole when no step is skipped.
    """
    parts = [re.fullmatch(r"(.*?)(\d+)", stem) for stem in stems]
    if not all(parts) or len({m.group(1) for m in parts}) != 1:
        return  # not a numbered sequence: natural order is all we can check
    numbers = [int(m.group(2)) for m in parts]
    step = max(1, numbers[1] - numbers[0]) if len(numbers) > 1 else 1
    for before, after, stem_before, stem_after in zip(numbers, numbers[1:], stems, stems[1:]):
        if after == before:
            raise FrameSourceError(f"{folder}: frames {stem_before} and {stem_after} have the same number")
        if after != before + step:
            prefix, digits = parts[0].group(1), parts[0].group(2)
            missing = f"{prefix}{str(before + step).zfill(len(digits))}"
            raise FrameSourceError(
                f"{folder}: frame {missing} is missing (numbering jumps from {stem_before} to {stem_after})"
            )


class ImageFolderSource(FrameSource):
    """A folder of numbered images (jpg/png), one per frame, as DAVIS stores videos."""

    backend = "folder"

    def __init__(self, folder: Path, stride: int = 1, max_frames: int | None = None):
        self._files = list_frame_files(folder)
        super().__init__(
            folder, len(self._files), self._header_size(self._files[0]), None, stride, max_frames,
            [p.stem for p in self._files]
        )
        # Every selected frame's size from its header (no pixel is decoded), so a folder of
        # mixed sizes is refused before any mask is written.
        for index in self._indices:
            self._check_size(self._files[index], self._header_size(self._files[index]))

    @staticmethod
    def _header_size(path: Path) -> tuple[int, int]:
        """(height, width) from the image header."""
        try:
            with Image.open(path) as image:
                return image.height, image.width
        except IMAGE_ERRORS as err:
            raise FrameSourceError(f"{path}: cannot read image ({err})") from None

    def _check_size(self, path: Path, size: tuple[int, ...]) -> None:
        if size != self.size:
            raise FrameSourceError(
                f"{path}: image is {size[0]}x{size[1]} (HxW) but the first frame "
                f"{self._files[0].name} is {self.size[0]}x{self.size[1]}; "
                "all frames of a video must have one size"
            )

    def _read(self, index: int) -> np.ndarray:
        path = self._files[index]
        try:
            with Image.open(path) as image:
                frame = np.asarray(image.convert("RGB"))
        except IMAGE_ERRORS as err:
            raise FrameSourceError(f"{path}: cannot read image ({err})") from None
        self._check_size(path, frame.shape[:2])  # the file may have changed since it was opened
        return frame


# --------------------------------------------------------------------------- videos


def declared_frame_count(path: Path) -> int:
    """The frame count the container's header declares (0 when it has none or cannot be read)."""
    import av

    try:
        with av.open(str(path)) as container:
            return container.streams.video[0].frames if container.streams.video else 0
    except (av.FFmpegError, OSError):
        return 0


def _decord_message(err: Exception) -> str:
    """decord's error text without the ``[time] source-file:line:`` prefixes it stacks up."""
    return re.sub(r"\[[\d:]+\] \S+:\d+: ", "", str(err)).strip()


class DecordSource(FrameSource):
    """Video read by decord: fast, frame-accurate random access.

    decord indexes only the frames present in the file, so a truncated file looks like a
    shorter video; the source keeps the length the container declares, and reading past
    the present frames fails as it does in the other readers.
    """

    backend = "decord"

    def __init__(self, path: Path, stride: int = 1, max_frames: int | None = None):
        import decord

        self._error = decord._ffi.base.DECORDError
        try:
            self._reader = decord.VideoReader(str(path), ctx=decord.cpu(0))
            self._present = len(self._reader)
            height, width = self._reader[0].shape[:2] if self._present else (0, 0)
            fps = float(self._reader.get_avg_fps())
        except (self._error, RuntimeError, OSError) as err:
            raise FrameSourceError(f"{path}: decord cannot read this video ({_decord_message(err)})") from None
        if self._present == 0:
            raise FrameSourceError(f"{path}: decord finds no frames in this video")
        total = max(self._present, declared_frame_count(path))
        super().__init__(path, total, (height, width), fps, stride, max_frames)

    def close(self) -> None:
        # decord has no close(): dropping the last reference frees its decoder and file.
        self._reader = None

    def _read(self, index: int) -> np.ndarray:
        if index >= self._present:
            raise self._ended_early(self._present)
        try:
            return self._reader[index].asnumpy()
        except (self._error, RuntimeError) as err:
            raise FrameSourceError(
                f"{self.path}: decord cannot decode frame {index} ({_decord_message(err)})"
            ) from None


class PyAVSource(FrameSource):
    """Video read by PyAV (FFmpeg).

    Iteration decodes straight through with its own container. Random access seeks to
    the keyframe before the wanted frame and decodes forward; frames are matched by
    presentation timestamp, from a table built by demuxing (not decoding) the file once.
    """

    backend = "pyav"

    def __init__(self, path: Path, stride: int = 1, max_frames: int | None = None):
        import av

        self._av_error = av.FFmpegError
        self._container = self._open(path)
        stream = self._container.streams.video[0]
        context = stream.codec_context
        rate = stream.average_rate or stream.guessed_rate
        self._pts_table: list[int] | None = None
        self._cursor: Iterator | None = None
        self._cursor_index = -1
        try:
            total = stream.frames or len(self._timestamps(path))  # Matroska and others store no count
            if total == 0 or not context.width:
                raise FrameSourceError(f"{path}: PyAV finds no decodable frames in this video")
        except FrameSourceError:
            self._container.close()
            raise
        fps = float(rate) if rate else None
        super().__init__(path, total, (context.height, context.width), fps, stride, max_frames)

    def _open(self, path: Path):
        import av

        try:
            container = av.open(str(path))
        except (av.FFmpegError, OSError) as err:
            raise FrameSourceError(f"{path}: PyAV cannot open this video ({err})") from None
        if not container.streams.video:
            container.close()
            raise FrameSourceError(f"{path}: no video stream in this file")
        container.streams.video[0].thread_type = "AUTO"
        return container

    def close(self) -> None:
        self._container.close()

    def _timestamps(self, path: Path) -> list[int]:
        """Presentation timestamps of all frames, in display order (index -> pts)."""
        if self._pts_table is None:
            container = self._open(path)
            try:
                stream = container.streams.video[0]
                pts = [packet.pts for packet in container.demux(stream) if packet.pts is not None and packet.size]
            except self._av_error as err:
                raise FrameSourceError(f"{path}: PyAV cannot demux this video ({err})") from None
            finally:
                container.close()
            self._pts_table = sorted(pts)
        return self._pts_table

    def _decoded(self, container) -> Iterator:
        try:
            yield from container.decode(video=0)
        except self._av_error as err:
            raise FrameSourceError(
                f"{self.path}: PyAV cannot decode this video, truncated or corrupt? ({err})"
            ) from None

    def _stream(self, indices: range) -> Iterator[tuple[int, np.ndarray]]:
        if not indices:
            return
        wanted = iter(indices)
        target = next(wanted)
        container = self._open(self.path)
        decoded = 0
        try:
            for frame in self._decoded(container):
                if decoded == target:
                    yield decoded, frame.to_ndarray(format="rgb24")
                    target = next(wanted, None)
                    if target is None:
                        return
                decoded += 1
        finally:
            container.close()
        raise self._ended_early(decoded)

    def _read(self, index: int) -> np.ndarray:
        table = self._timestamps(self.path)
        if index >= len(table):
            raise self._ended_early(len(table))
        target = table[index]
        if not (self._cursor is not None and self._cursor_index < index <= self._cursor_index + 16):
            # Seek backwards from the wanted frame to its keyframe; decoding resumes there.
            self._container.seek(target, stream=self._container.streams.video[0], backward=True)
            self._cursor = self._decoded(self._container)
        try:
            for frame in self._cursor:
                if frame.pts is None:
                    continue
                if frame.pts >= target:
                    self._cursor_index = bisect.bisect_left(table, frame.pts)
                    if frame.pts == target:
                        return frame.to_ndarray(format="rgb24")
                    break
        except FrameSourceError:
            self._cursor = None  # the decoder failed: the next read seeks afresh instead of reusing it
            raise
        self._cursor = None
        raise FrameSourceError(f"{self.path}: PyAV cannot decode frame {index} (truncated or corrupt file?)")


class OpenCVSource(FrameSource):
    """Video read by OpenCV's FFmpeg backend: the last resort, present everywhere."""

    backend = "opencv"

    def __init__(self, path: Path, stride: int = 1, max_frames: int | None = None):
        import cv2

        self._cv2 = cv2
        self._capture = cv2.VideoCapture(str(path))
        if not self._capture.isOpened():
            raise FrameSourceError(f"{path}: OpenCV cannot open this video")
        total = int(self._capture.get(cv2.CAP_PROP_FRAME_COUNT))
        size = (int(self._capture.get(cv2.CAP_PROP_FRAME_HEIGHT)), int(self._capture.get(cv2.CAP_PROP_FRAME_WIDTH)))
        fps = self._capture.get(cv2.CAP_PROP_FPS)
        if total <= 0 or min(size) <= 0:
            self.close()
            raise FrameSourceError(f"{path}: OpenCV finds no frames in this video")
        self._next_index = 0
        super().__init__(path, total, size, float(fps) if fps > 0 else None, stride, max_frames)

    def close(self) -> None:
        self._capture.release()

    def _read(self, index: int) -> np.ndarray:
        if index != self._next_index:
            self._capture.set(self._cv2.CAP_PROP_POS_FRAMES, index)
            # On a damaged file OpenCV stops at the last frame it can reach and would
            # silently return that one instead.
            if int(self._capture.get(self._cv2.CAP_PROP_POS_FRAMES)) != index:
                self._next_index = -1
                raise FrameSourceError(f"{self.path}: OpenCV cannot seek to frame {index} (truncated or corrupt file?)")
        ok, bgr = self._capture.read()
        if not ok:
            self._next_index = -1
            raise FrameSourceError(f"{self.path}: OpenCV cannot decode frame {index} (truncated or corrupt file?)")
        self._next_index = index + 1
        return self._cv2.cvtColor(bgr, self._cv2.COLOR_BGR2RGB)

    def _stream(self, indices: range) -> Iterator[tuple[int, np.ndarray]]:
        # Its own capture, so streaming does not move the random-access position.
        capture = self._cv2.VideoCapture(str(self.path))
        try:
            for index in range(indices[-1] + 1 if indices else 0):
                if not capture.grab():
                    raise self._ended_early(index)
                if index in indices:  # O(1) for a range
                    ok, bgr = capture.retrieve()
                    if not ok:
                        raise FrameSourceError(f"{self.path}: OpenCV cannot decode frame {index}")
                    yield index, self._cv2.cvtColor(bgr, self._cv2.COLOR_BGR2RGB)
        finally:
            capture.release()


VIDEO_BACKENDS: dict[str, Callable[..., FrameSource]] = {
    "decord": DecordSource,
    "pyav": PyAVSource,
    "opencv": OpenCVSource,
}


def _one_line(err: Exception, path: Path) -> str:
    """An error's message without the leading path, on one line (decoder messages may span several)."""
    return " ".join(str(err).removeprefix(f"{path}: ").split())


def _check_selection(stride: int, max_frames: int | None) -> None:
    if not isinstance(stride, int) or stride < 1:
        raise FrameSourceError(f"stride must be a positive integer, got {stride!r}")
    if max_frames is not None and (not isinstance(max_frames, int) or max_frames < 1):
        raise FrameSourceError(f"max_frames must be a positive integer or None, got {max_frames!r}")


def open_frames(
    path: str | os.PathLike,
    *,
    stride: int = 1,
    max_frames: int | None = None,
    backend: str | None = None,
    verify: bool = False,
    allow_truncated: bool = False,
) -> FrameSource:
    """Open a frame folder or a video file.

    ``stride`` keeps every ``stride``-th frame and ``max_frames`` caps how many are kept.
    For videos, ``backend`` forces one reader; by default decord, PyAV and OpenCV are
    tried in turn and the first that reads the file is used.

    ``verify=True`` decodes every selected frame once before returning (one extra
    decode, no frame kept), so a run cannot fail midway: a video reader that stops
    early is replaced by the next one, and when none gets through a
    :class:`TruncatedVideoError` names the file and the frame where decoding broke.
    ``allow_truncated=True`` (which implies ``verify``) keeps instead the frames before
    that point, from the reader that got furthest, with a warning. For a folder,
    ``verify`` decodes every image (an unreadable one is an error naming it).
    """
    path = Path(path)
    _check_selection(stride, max_frames)
    if backend is not None and backend != "folder" and backend not in VIDEO_BACKENDS:
        raise FrameSourceError(f"unknown frame backend {backend!r}; choose from folder, {', '.join(VIDEO_BACKENDS)}")
    if not path.exists():
        raise FrameSourceError(f"{path}: no such video file or frame folder")
    if path.is_dir():
        if backend not in (None, "folder"):
            raise FrameSourceError(f"{path}: is a folder of frames, not a video for backend {backend!r}")
        source = ImageFolderSource(path, stride, max_frames)
        return _verified_folder(source) if verify else source
    if backend == "folder":
        raise FrameSourceError(f"{path}: is a file, not a folder of frames")
    if path.suffix.lower() in IMAGE_SUFFIXES:
        raise FrameSourceError(f"{path}: is a single image; pass the folder that holds the frames")
    return open_video(path, [backend] if backend else list(VIDEO_BACKENDS), stride, max_frames,
                      verify=verify or allow_truncated, allow_truncated=allow_truncated)


def _verified_folder(source: FrameSource) -> FrameSource:
    _, error = source.first_undecodable()
    if error is not None:
        source.close()
        raise error
    return source


def open_video(path: Path, backends: list[str], stride: int, max_frames: int | None, *,
               verify: bool = False, allow_truncated: bool = False) -> FrameSource:
    """The first of ``backends`` that can read ``path`` (with ``verify``: decode every selected frame).

    Each failure is logged and reported; see :func:`open_frames` for ``verify`` and
    ``allow_truncated``.
    """
    failures, tried = [], []
    furthest: tuple[int, FrameSource, FrameSourceError] | None = None
    for position, name in enumerate(backends):
        try:
            source = VIDEO_BACKENDS[name](path, stride, max_frames)
        except ImportError as err:
            failures.append(f"{name} is not installed ({err})")
            log = logger.info
        except FrameSourceError as err:
            failures.append(_one_line(err, path))
            log = logger.warning
        else:
            decoded, error = source.first_undecodable() if verify else (len(source), None)
            if error is None:
                logger.debug("%s: reading with %s", path, name)
                if furthest is not None:
                    furthest[1].close()
                return source
            failures.append(f"{name} decodes {decoded} of {len(source)} frames ({_one_line(error, path)})")
            tried.append(name)
            log = logger.warning
            if furthest is None or decoded > furthest[0]:
                if furthest is not None:
                    furthest[1].close()
                furthest = (decoded, source, error)
            else:
                source.close()
        if position + 1 < len(backends):
            log("%s: %s; falling back to %s", path, failures[-1], backends[position + 1])
    if furthest is None:
        raise FrameSourceError(f"{path}: cannot read this video ({'; '.join(failures)})")
    return _truncated(path, *furthest, allow_truncated, tried)


def _truncated(path: Path, decoded: int, source: FrameSource, error: FrameSourceError,
               allow_truncated: bool, tried: list[str]) -> FrameSource:
    """``source`` limited to its ``decoded`` frames when allowed (and any decode); else the error."""
    total = len(source)
    if not (allow_truncated and decoded):
        source.close()
        broken_at = int(source._indices[decoded])
        detail = _one_line(error, path)
        reason = (f"{source.backend}: {detail}" if len(tried) == 1
                  else f"tried {', '.join(tried)}; {source.backend} got furthest: {detail}")
        raise TruncatedVideoError(path, broken_at, decoded, total, reason) from None
    source.keep_first(decoded)
    logger.warning("%s: truncated or corrupt video: keeping the %d of %d frames that decode with %s "
                   "(%d dropped; allow_truncated is set)", path, decoded, total, source.backend, total - decoded)
    return source


# --------------------------------------------------------------------------- arrays


def _array_frames(frames: np.ndarray | Sequence[np.ndarray]) -> np.ndarray | Sequence[np.ndarray]:
    """``frames`` checked to be RGB uint8 frames of one size: a (T, H, W, 3) array or (H, W, 3) arrays."""
    if isinstance(frames, np.ndarray):
        if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8 or 0 in frames.shape:
            raise FrameSourceError(
                f"frames array is {frames.shape} {frames.dtype}; expected (T, H, W, 3) uint8 RGB with T, H, W > 0"
            )
        return frames
    if not frames:
        raise FrameSourceError("frames list is empty; expected (H, W, 3) uint8 RGB arrays")
    for index, frame in enumerate(frames):
        if not isinstance(frame, np.ndarray):
            raise FrameSourceError(f"frames list: frame {index} is a {type(frame).__name__}, not a numpy array")
        if frame.ndim != 3 or frame.shape[-1] != 3 or frame.dtype != np.uint8 or 0 in frame.shape:
            raise FrameSourceError(
                f"frames list: frame {index} is {frame.shape} {frame.dtype}; expected (H, W, 3) uint8 RGB"
            )
        if frame.shape != frames[0].shape:
            raise FrameSourceError(
                f"frames list: frame {index} is {frame.shape[0]}x{frame.shape[1]} (HxW) but frame 0 is "
                f"{frames[0].shape[0]}x{frames[0].shape[1]}; all frames of a video must have one size"
            )
    return frames


class ArraySource(FrameSource):
    """Frames already in memory: a (T, H, W, 3) uint8 array or a sequence of (H, W, 3) uint8 arrays.

    They are checked when the source is made, so a bad frame fails before any work;
    frames are named 00000, 00001, ... by their index.
    """

    backend = "array"

    def __init__(self, frames: np.ndarray | Sequence[np.ndarray], stride: int = 1, max_frames: int | None = None):
        _check_selection(stride, max_frames)
        self._frames = _array_frames(frames)
        super().__init__(None, len(self._frames), tuple(self._frames[0].shape[:2]), None, stride, max_frames)

    def _read(self, index: int) -> np.ndarray:
        return self._frames[index]


def as_frame_source(
    video: str | os.PathLike | np.ndarray | Sequence[np.ndarray] | FrameSource,
    *,
    stride: int = 1,
    max_frames: int | None = None,
    verify: bool = False,
    allow_truncated: bool = False,
) -> FrameSource:
    """Any form of video as a :class:`FrameSource`.

    ``video`` is a path (video file or frame folder, opened with :func:`open_frames`),
    a (T, H, W, 3) uint8 array or a sequence of (H, W, 3) uint8 arrays, or an open
    FrameSource, returned as it is (it was opened with its own options, so any given
    here are an error).
    """
    if isinstance(video, FrameSource):
        if (stride, max_frames, verify, allow_truncated) != (1, None, False, False):
            raise FrameSourceError(
                f"{video.where}: is already open; give stride, max_frames, verify and allow_truncated "
                "to open_frames, or pass the path"
            )
        return video
    if isinstance(video, (str, os.PathLike)):
        return open_frames(video, stride=stride, max_frames=max_frames, verify=verify,
                           allow_truncated=allow_truncated)
    if isinstance(video, (np.ndarray, list, tuple)):
        return ArraySource(video, stride, max_frames)
    raise FrameSourceError(
        f"cannot take frames from a {type(video).__name__}; expected a video file or frame folder path, "
        "a (T, H, W, 3) uint8 array, a list of (H, W, 3) uint8 arrays, or a FrameSource"
    )
