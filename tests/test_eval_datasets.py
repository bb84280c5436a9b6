"""Dataset layouts (eval.datasets): paths, sequence lists, and one clear line for each broken layout."""
import pytest

from eval.datasets import DatasetLayout, DavisLayout, EvaluationError


def make_davis(root, sequences=("bear", "car"), resolution="480p", unsupervised=False):
    (root / "ImageSets" / "2017").mkdir(parents=True)
    (root / "ImageSets" / "2017" / "val.txt").write_text("".join(f"{s}\n" for s in sequences) + "\n")
    for sequence in sequences:
        (root / "JPEGImages" / resolution / sequence).mkdir(parents=True)
        (root / "Annotations" / resolution / sequence).mkdir(parents=True)
        if unsupervised:
            (root / "Annotations_unsupervised" / resolution / sequence).mkdir(parents=True)
    return root


def test_davis_paths(tmp_path):
    layout = DavisLayout(tmp_path, year=2017, resolution="Full-Resolution")
    assert isinstance(layout, DatasetLayout)
    assert layout.year == "2017" and layout.split == "val"
    assert layout.frames_dir("bear") == tmp_path / "JPEGImages" / "Full-Resolution" / "bear"
    assert layout.annotations_dir("bear") == tmp_path / "Annotations" / "Full-Resolution" / "bear"
    assert layout.annotations_dir("bear", "unsupervised") == (
        tmp_path / "Annotations_unsupervised" / "Full-Resolution" / "bear")
    with pytest.raises(EvaluationError, match="unknown task 'semi'"):
        layout.annotations_dir("bear", "semi")


def test_check_returns_the_listed_sequences_in_order(tmp_path):
    layout = DavisLayout(make_davis(tmp_path, ["zebra", "bear"], unsupervised=True))
    assert layout.sequences() == ["zebra", "bear"]
    assert layout.check() == ["zebra", "bear"]
    assert layout.check("unsupervised", sequences=["bear"]) == ["bear"]


def test_check_names_a_missing_root(tmp_path):
    with pytest.raises(EvaluationError, match=f"^DAVIS root {tmp_path / 'nowhere'} not found$"):
        DavisLayout(tmp_path / "nowhere").check()


def test_check_names_a_missing_or_empty_sequence_list(tmp_path):
    make_davis(tmp_path)
    listing = tmp_path / "ImageSets" / "2016" / "val.txt"
    with pytest.raises(EvaluationError, match=f"^{listing}: cannot read the sequence list"):
        DavisLayout(tmp_path, year="2016").check()
    listing = tmp_path / "ImageSets" / "2017" / "val.txt"
    listing.write_text("\n \n")
    with pytest.raises(EvaluationError, match=f"^{listing}: the sequence list is empty$"):
        DavisLayout(tmp_path).check()


def test_check_names_a_missing_resolution_and_the_ones_present(tmp_path):
    make_davis(tmp_path)
    (tmp_path / "JPEGImages" / "Full-Resolution").mkdir()  # frames there, annotations not
    with pytest.raises(EvaluationError) as error:
        DavisLayout(tmp_path, resolution="Full-Resolution").check()
    assert str(error.value) == (
        f"{tmp_path / 'Annotations' / 'Full-Resolution'} not found (semi-supervised annotations at resolution "
        f"Full-Resolution; {tmp_path / 'Annotations'} has 480p)"
    )


def test_check_names_the_missing_unsupervised_annotations(tmp_path):
    make_davis(tmp_path)
    with pytest.raises(EvaluationError, match=r"Annotations_unsupervised/480p not found \(unsupervised annotations "
                                              r"at resolution 480p\)$"):
        DavisLayout(tmp_path).check("unsupervised")


def test_check_names_a_sequence_without_its_folders(tmp_path):
    make_davis(tmp_path)
    (tmp_path / "Annotations" / "480p" / "car").rmdir()
    with pytest.raises(EvaluationError, match=r"Annotations/480p/car not found \(semi-supervised annotations of "
                                              r"sequence car\)$"):
        DavisLayout(tmp_path).check()
    assert DavisLayout(tmp_path).check(sequences=["bear"]) == ["bear"]
    (tmp_path / "JPEGImages" / "480p" / "bear").rmdir()
    with pytest.raises(EvaluationError, match=r"JPEGImages/480p/bear not found \(frames of sequence bear"):
        DavisLayout(tmp_path).check()


def test_frame_names_are_the_sorted_jpeg_stems(tmp_path):
    make_davis(tmp_path, ["bear"])
    folder = tmp_path / "JPEGImages" / "480p" / "bear"
    for name in ["00001.jpg", "00000.jpg", "00002.png", "notes.txt"]:
        (folder / name).touch()
    assert DavisLayout(tmp_path).frame_names("bear") == ["00000", "00001"]
