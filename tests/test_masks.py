"""Object masks (vos.masks): label PNG round trips, binary masks, per-object views."""
import numpy as np
import pytest
from PIL import Image

from eval.files import MaskFileError, davis_palette
from vos.masks import merge_objects, object_ids, read_binary_mask, read_mask, split_objects, write_mask


@pytest.fixture
def labels():
    labels = np.zeros((6, 9), np.uint8)
    labels[1:3, 1:4] = 1
    labels[3:6, 5:9] = 3
    labels[0, 8] = 17
    return labels


def test_write_then_read_is_lossless_davis_png(tmp_path, labels):
    path = tmp_path / "out" / "00003.png"
    write_mask(path, labels)
    with Image.open(path) as image:
        assert image.mode == "P"
        assert image.getpalette()[: 3 * 4] == davis_palette()[:4].flatten().tolist()
        # Pixel (4, 6) belongs to object 3, drawn in DAVIS colour 3 = (128, 128, 0).
        assert image.convert("RGB").getpixel((6, 4)) == (128, 128, 0)
    np.testing.assert_array_equal(read_mask(path, expected_size=(6, 9)), labels)
    assert sorted(p.name for p in path.parent.iterdir()) == ["00003.png"]  # no temporary left


def test_failed_write_leaves_the_old_file(tmp_path, labels):
    path = tmp_path / "00000.png"
    write_mask(path, labels)
    with pytest.raises(ValueError, match="2-D"):
        write_mask(path, labels[None])
    np.testing.assert_array_equal(read_mask(path), labels)


def test_grey_label_png_is_read_as_ids(tmp_path, labels):
    path = tmp_path / "grey.png"
    Image.fromarray(labels, mode="L").save(path)
    np.testing.assert_array_equal(read_mask(path), labels)


def test_rgb_mask_is_rejected_naming_the_file(tmp_path, labels):
    path = tmp_path / "colour.png"
    Image.fromarray(davis_palette()[labels]).save(path)
    with pytest.raises(MaskFileError, match=r"colour\.png.*RGB"):
        read_mask(path)


def test_mask_of_wrong_size_names_file_and_both_sizes(tmp_path, labels):
    path = tmp_path / "small.png"
    write_mask(path, labels)
    with pytest.raises(MaskFileError, match=r"small\.png: mask is 6x9 \(HxW\) but its frame is 480x854"):
        read_mask(path, expected_size=(480, 854))
    with pytest.raises(MaskFileError, match=r"small\.png: mask is 6x9"):
        read_binary_mask(path, expected_size=(9, 6))


def test_missing_or_corrupt_mask_names_the_file(tmp_path):
    with pytest.raises(MaskFileError, match=r"absent\.png: mask file not found"):
        read_binary_mask(tmp_path / "absent.png")
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG but not really")
    with pytest.raises(MaskFileError, match=r"broken\.png: cannot read mask"):
        read_binary_mask(broken)


@pytest.mark.parametrize("mode, on", [("L", 255), ("L", 1), ("RGB", 255), ("1", 1), ("P", 1), ("LA", 255)])
def test_binary_mask_formats(tmp_path, mode, on):
    expected = np.zeros((5, 7), bool)
    expected[1:4, 2:6] = True
    pixels = np.where(expected, on, 0).astype(np.uint8)
    path = tmp_path / f"mask_{mode}.png"
    if mode == "P":
        write_mask(path, pixels)  # a DAVIS 2016 annotation: palette PNG with ids 0/1
    else:
        opaque = np.full_like(pixels, 255)  # grey plus alpha, as image editors save masks
        images = {"L": pixels, "RGB": np.stack([pixels] * 3, axis=2), "1": expected,
                  "LA": np.stack([pixels, opaque], axis=2)}
        Image.fromarray(images[mode]).save(path)
    with Image.open(path) as image:
        assert image.mode == mode
    mask = read_binary_mask(path, expected_size=(5, 7))
    assert mask.dtype == bool
    np.testing.assert_array_equal(mask, expected)


def test_binary_mask_rejects_colours_and_grey_levels(tmp_path):
    coloured = np.zeros((4, 4, 3), np.uint8)
    coloured[1, 1] = (255, 0, 0)
    Image.fromarray(coloured).save(tmp_path / "red.png")
    with pytest.raises(MaskFileError, match=r"red\.png: mask has colours"):
        read_binary_mask(tmp_path / "red.png")
    grey = np.array([[0, 128], [255, 0]], np.uint8)
    Image.fromarray(grey).save(tmp_path / "soft.png")
    with pytest.raises(MaskFileError, match=r"soft\.png: not a binary mask; pixel values \[0, 128, 255\]"):
        read_binary_mask(tmp_path / "soft.png")


def test_object_ids_are_sorted_nonzero(labels):
    assert object_ids(labels) == [1, 3, 17]
    assert object_ids(np.zeros((3, 3), np.uint8)) == []


def test_split_then_merge_round_trips(labels):
    masks = split_objects(labels)
    assert masks.shape == (3, 6, 9) and masks.dtype == bool
    assert masks.sum(axis=(1, 2)).tolist() == [6, 12, 1]
    assert masks[2, 0, 8]  # the single pixel of object 17
    np.testing.assert_array_equal(merge_objects(masks, [1, 3, 17]), labels)


def test_split_with_explicit_ids_keeps_their_order_and_absent_ones(labels):
    masks = split_objects(labels, ids=[3, 5, 1])
    assert masks.sum(axis=(1, 2)).tolist() == [12, 0, 6]
    assert split_objects(labels, ids=[]).shape == (0, 6, 9)
    merged = merge_objects(masks[[0, 2]], [3, 1])
    np.testing.assert_array_equal(merged, np.where(labels == 17, 0, labels))


def test_merge_refuses_overlaps_and_bad_ids():
    masks = np.zeros((2, 4, 4), bool)
    masks[0, :2] = True
    masks[1, 1:3] = True
    with pytest.raises(ValueError, match="overlap on 4 pixels"):
        merge_objects(masks, [1, 2])
    with pytest.raises(ValueError, match="expected 3 masks"):
        merge_objects(masks, [1, 2, 3])
    with pytest.raises(ValueError, match="1..255"):
        merge_objects(masks[:1], [256])
    with pytest.raises(ValueError, match="distinct"):
        merge_objects(np.zeros((2, 4, 4), bool), [1, 1])


def test_davis_annotation_reads_as_object_one(davis_root):
    path = davis_root / "Annotations" / "480p" / "blackswan" / "00000.png"
    labels = read_mask(path, expected_size=(480, 854))
    assert object_ids(labels) == [1]
    # DAVIS 2016 masks are 0/1 palette images: the binary reader sees the same object.
    np.testing.assert_array_equal(read_binary_mask(path), labels == 1)
