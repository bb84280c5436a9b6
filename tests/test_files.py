"""Label PNG format and atomic writes (eval.files)."""
import numpy as np
import pytest
from PIL import Image

from eval.files import MaskFileError, atomic_writer, davis_palette, read_label_png, write_label_png


def test_palette_matches_pascal_voc_entries():
    palette = davis_palette()
    # Hand-checked entries of the PASCAL-VOC colour map used by DAVIS.
    assert palette[0].tolist() == [0, 0, 0]
    assert palette[1].tolist() == [128, 0, 0]
    assert palette[2].tolist() == [0, 128, 0]
    assert palette[3].tolist() == [128, 128, 0]
    assert palette[4].tolist() == [0, 0, 128]
    assert palette[8].tolist() == [64, 0, 0]
    assert palette[255].tolist() == [224, 224, 192]


def test_label_png_round_trip_is_indexed_with_davis_palette(tmp_path):
    labels = np.zeros((5, 7), np.uint8)
    labels[1:3, 2:5] = 1
    labels[4, 6] = 3
    path = tmp_path / "sub" / "00000.png"
    write_label_png(path, labels)
    with Image.open(path) as image:
        assert image.mode == "P"
        assert np.array(image.getpalette()[:9]).tolist() == [0, 0, 0, 128, 0, 0, 0, 128, 0]
    np.testing.assert_array_equal(read_label_png(path), labels)
    assert [p.name for p in path.parent.iterdir()] == ["00000.png"]


def test_rgb_png_is_rejected_with_its_path(tmp_path):
    path = tmp_path / "rgb.png"
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(path)
    with pytest.raises(MaskFileError, match=r"rgb\.png.*RGB image"):
        read_label_png(path)


def test_missing_and_corrupt_files_are_named(tmp_path):
    with pytest.raises(MaskFileError, match="missing.png: mask file not found"):
        read_label_png(tmp_path / "missing.png")
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    with pytest.raises(MaskFileError, match="bad.png: cannot read mask"):
        read_label_png(bad)


def test_atomic_writer_keeps_old_content_on_failure(tmp_path):
    path = tmp_path / "out.txt"
    path.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_writer(path) as fh:
            fh.write("half")
            raise RuntimeError("interrupted")
    assert path.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]
    with atomic_writer(path) as fh:
        fh.write("new")
    assert path.read_text() == "new"


def test_atomic_writer_gives_normal_file_permissions(tmp_path):
    import os

    previous = os.umask(0o022)
    try:
        with atomic_writer(tmp_path / "out.txt") as fh:
            fh.write("x")
    finally:
        os.umask(previous)
    assert (tmp_path / "out.txt").stat().st_mode & 0o777 == 0o644


def test_atomic_writer_leaves_the_process_umask_alone(tmp_path, monkeypatch):
    # os.umask is process-wide: flipping it to read it would race with other threads creating files.
    import os

    def forbidden(mask):
        raise AssertionError("atomic_writer must not change the umask")

    monkeypatch.setattr(os, "umask", forbidden)
    write_label_png(tmp_path / "00000.png", np.zeros((2, 3), np.uint8))
    np.testing.assert_array_equal(read_label_png(tmp_path / "00000.png"), np.zeros((2, 3), np.uint8))
    assert [p.name for p in tmp_path.iterdir()] == ["00000.png"]
