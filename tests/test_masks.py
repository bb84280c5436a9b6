"""Object masks (vos.masks): label PNG round trips, binary masks, per-object views."""
import numpy as np
import pytest
from PIL import Image

from eval.files import MaskFileError, davis_palette
from vos.masks import as_annotation, object_ids, read_annotation, read_mask, split_objects, write_mask


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
        read_annotation(path, expected_size=(9, 6))


def test_missing_or_corrupt_mask_names_the_file(tmp_path):
    with pytest.raises(MaskFileError, match=r"absent\.png: mask file not found"):
        read_annotation(tmp_path / "absent.png")
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG but not really")
    with pytest.raises(MaskFileError, match=r"broken\.png: cannot read mask"):
        read_annotation(broken)


@pytest.mark.parametrize("mode, on", [("L", 255), ("L", 1), ("RGB", 255), ("1", 1), ("P", 1), ("P", 255),
                                      ("LA", 255)])
def test_binary_masks_in_any_format_are_one_object(tmp_path, mode, on):
    """0/255 (or 0/1) black-and-white masks, as image tools and DAVIS-2016 save them: object 1."""
    expected = np.zeros((5, 7), np.uint8)
    expected[1:4, 2:6] = 1
    pixels = (expected * on).astype(np.uint8)
    path = tmp_path / f"mask_{mode}.png"
    if mode == "P":
        write_mask(path, pixels)
    else:
        opaque = np.full_like(pixels, 255)  # grey plus alpha, as image editors save masks
        images = {"L": pixels, "RGB": np.stack([pixels] * 3, axis=2), "1": expected.astype(bool),
                  "LA": np.stack([pixels, opaque], axis=2)}
        Image.fromarray(images[mode]).save(path)
    with Image.open(path) as image:
        assert image.mode == mode
    labels = read_annotation(path, expected_size=(5, 7))
    np.testing.assert_array_equal(labels, expected)
    assert object_ids(labels) == [1]


def test_255_in_a_multi_object_mask_is_void(tmp_path):
    labels = np.array([[0, 1, 1, 255], [2, 2, 255, 0]], np.uint8)
    write_mask(tmp_path / "void.png", labels)
    read = read_annotation(tmp_path / "void.png")
    np.testing.assert_array_equal(read, labels)  # 255 kept as void
    assert object_ids(read) == [1, 2]  # neither an object nor background
    assert split_objects(read).sum(axis=(1, 2)).tolist() == [2, 2]


def test_lossy_masks_are_refused_before_their_noise_becomes_objects(tmp_path):
    yy, xx = np.mgrid[:32, :32]
    labels = (((yy - 15.5) ** 2 + (xx - 13) ** 2) < 90).astype(np.uint8)  # a disc: edges off the 8x8 blocks
    path = tmp_path / "first.jpg"
    Image.fromarray(labels * 255).save(path, quality=75)
    assert len(np.unique(np.asarray(Image.open(path)))) > 2  # what would have become "objects"
    with pytest.raises(MaskFileError, match=r"first\.jpg: is a JPEG image; masks must be lossless \(PNG\)"):
        read_annotation(path)


def test_a_mask_with_too_many_ids_is_not_a_label_map(tmp_path):
    noisy = (np.arange(64 * 64) % 40).reshape(64, 64).astype(np.uint8)  # ids 1..39
    write_mask(tmp_path / "noisy.png", noisy)
    with pytest.raises(MaskFileError, match=r"noisy\.png: 39 object ids .* at most 32 .* max_objects"):
        read_annotation(tmp_path / "noisy.png")
    assert object_ids(read_annotation(tmp_path / "noisy.png", max_objects=39)) == list(range(1, 40))


def test_arrays_follow_the_same_rule():
    np.testing.assert_array_equal(as_annotation(np.array([[True, False]])), [[1, 0]])
    np.testing.assert_array_equal(as_annotation(np.array([[0, 255]], np.int64)), [[0, 1]])
    with pytest.raises(MaskFileError, match="2-D"):
        as_annotation(np.zeros((2, 2, 2), np.uint8))
    with pytest.raises(MaskFileError, match="0..255"):
        as_annotation(np.array([[0, 300]]))


def test_grey_colour_mask_with_colours_is_refused(tmp_path):
    coloured = np.zeros((4, 4, 3), np.uint8)
    coloured[1, 1] = (255, 0, 0)
    Image.fromarray(coloured).save(tmp_path / "red.png")
    with pytest.raises(MaskFileError, match=r"red\.png: mask is a RGB image with colours"):
        read_annotation(tmp_path / "red.png")


def test_object_ids_are_sorted_and_skip_background_and_void(labels):
    assert object_ids(labels) == [1, 3, 17]
    assert object_ids(np.zeros((3, 3), np.uint8)) == []
    assert object_ids(np.array([[0, 255, 4]], np.uint8)) == [4]


def test_split_objects(labels):
    masks = split_objects(labels)
    assert masks.shape == (3, 6, 9) and masks.dtype == bool
    assert masks.sum(axis=(1, 2)).tolist() == [6, 12, 1]
    assert masks[2, 0, 8]  # the single pixel of object 17


def test_split_with_explicit_ids_keeps_their_order_and_absent_ones(labels):
    masks = split_objects(labels, ids=[3, 5, 1])
    assert masks.sum(axis=(1, 2)).tolist() == [12, 0, 6]
    assert split_objects(labels, ids=[]).shape == (0, 6, 9)


def test_davis_annotation_reads_as_object_one(davis_root):
    path = davis_root / "Annotations" / "480p" / "blackswan" / "00000.png"
    labels = read_annotation(path, expected_size=(480, 854))
    assert object_ids(labels) == [1]
    np.testing.assert_array_equal(labels, read_mask(path))
