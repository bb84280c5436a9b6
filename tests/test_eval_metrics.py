"""Per-frame J and F, their statistics and the in-memory protocol, against hand-computed cases."""
import numpy as np
import pytest
from scipy import ndimage

from eval import EvaluationError, evaluate_sequence, f_measure, jaccard
from eval.metrics import boundary_map, boundary_tolerance, decay_bin_edges, disk_kernel, statistics


def square(shape, top, left, size):
    mask = np.zeros(shape, bool)
    mask[top:top + size, left:left + size] = True
    return mask


def test_boundary_map_of_a_square_is_offset_towards_the_origin():
    mask = square((5, 5), 1, 1, 2)
    expected = np.array([
        [1, 1, 1, 0, 0],
        [1, 0, 1, 0, 0],
        [1, 1, 1, 0, 0],
        [0, 0, 0, 0, 0],
        [0, 0, 0, 0, 0],
    ], bool)
    np.testing.assert_array_equal(boundary_map(mask), expected)


def test_full_mask_has_no_boundary_so_it_scores_zero_f():
    full = np.ones((6, 7), bool)
    assert not boundary_map(full).any()
    assert float(f_measure(square((6, 7), 1, 1, 3), full, bound_th=2)) == 0.0


def test_disk_and_tolerance_match_the_toolkit_construction():
    from skimage.morphology import disk

    assert boundary_tolerance((480, 854)) == 8.0  # ceil(0.008 * 979.6)
    assert boundary_tolerance((480, 854), bound_th=3) == 3.0
    np.testing.assert_array_equal(disk_kernel(8.0), disk(8).astype(np.uint8))
    np.testing.assert_array_equal(disk_kernel(2.0), disk(2).astype(np.uint8))


def test_jaccard_hand_cases_with_void_and_empty_union():
    gt = square((6, 6), 1, 1, 2)  # 4 px
    pred = np.zeros((6, 6), bool)
    pred[1:3, 1:4] = True  # 6 px, 4 shared
    assert float(jaccard(gt, pred)) == pytest.approx(4 / 6)
    void = np.zeros((6, 6), bool)
    void[:, 3] = True  # removes the two extra predicted pixels
    assert float(jaccard(gt, pred, void)) == 1.0
    empty = np.zeros((6, 6), bool)
    np.testing.assert_array_equal(jaccard(np.stack([empty, gt]), np.stack([empty, empty])), [1.0, 0.0])


def test_f_measure_empty_cases_follow_the_toolkit():
    empty = np.zeros((8, 8), bool)
    obj = square((8, 8), 2, 2, 3)
    np.testing.assert_array_equal(
        f_measure(np.stack([empty, obj, empty]), np.stack([empty, empty, obj])), [1.0, 0.0, 0.0]
    )


def reference_f(gt, pred, void, radius):
    """Straightforward full-frame F with scipy's dilation (no cropping, no OpenCV)."""
    keep = ~void
    gt_b, pred_b = boundary_map(gt & keep), boundary_map(pred & keep)
    n_gt, n_pred = gt_b.sum(), pred_b.sum()
    if n_gt == 0 and n_pred == 0:
        return 1.0
    if n_gt == 0 or n_pred == 0:
        return 0.0
    footprint = disk_kernel(radius).astype(bool)
    precision = (pred_b & ndimage.binary_dilation(gt_b, footprint)).sum() / n_pred
    recall = (gt_b & ndimage.binary_dilation(pred_b, footprint)).sum() / n_gt
    return 0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall)


def test_cropped_f_equals_full_frame_f_including_image_borders():
    rng = np.random.default_rng(0)
    for _ in range(40):
        shape = (int(rng.integers(5, 40)), int(rng.integers(5, 40)))
        gt = ndimage.binary_opening(rng.random(shape) < 0.5)
        pred = rng.random(shape) < rng.choice([0.02, 0.5, 0.98])
        void = rng.random(shape) < 0.05
        for bound_th in (1.0, 2.0, 0.05):
            radius = boundary_tolerance(shape, bound_th)
            expected = reference_f(gt, pred, void, radius)
            assert float(f_measure(gt, pred, void, bound_th=bound_th)) == pytest.approx(expected, abs=1e-12)


def test_statistics_hand_case():
    mean, recall, decay = statistics([1.0, 1.0, 0.0, 0.0])
    assert (mean, recall, decay) == (0.5, 0.5, 1.0)


def official_uint8_decay(values):
    """The toolkit's Decay, with its uint8 bin edges, to compare against."""
    ids = (np.round(np.linspace(1, len(values), 5) + 1e-10) - 1).astype(np.uint8)
    with np.errstate(all="ignore"):
        first, last = values[ids[0]:ids[1] + 1], values[ids[3]:ids[4] + 1]
        return np.mean(first) - np.mean(last) if len(last) else np.nan


@pytest.mark.parametrize("n", [1, 2, 3, 5, 58, 97, 254, 255])
def test_decay_equals_the_official_up_to_255_frames(n):
    values = np.random.default_rng(n).random(n)
    assert statistics(values)[2] == official_uint8_decay(values)


def test_decay_is_correct_from_256_frames_where_the_official_one_wraps():
    # At 256 frames the last edge is 255 and the toolkit's uint8 ``255 + 1`` is 0 (numpy 2).
    values = np.r_[np.ones(128), np.zeros(128)]
    assert statistics(values)[2] == 1.0
    assert np.isnan(official_uint8_decay(values))

    values = np.r_[np.ones(150), np.zeros(150)]  # first quarter all 1, last all 0
    np.testing.assert_array_equal(decay_bin_edges(300), [0, 75, 150, 224, 299])
    assert statistics(values)[2] == 1.0
    assert np.isnan(official_uint8_decay(values))  # 299 wraps to 43: empty last bin


def two_object_clip(frames=5, shape=(20, 30)):
    gt = np.zeros((frames, *shape), np.uint8)
    gt[:, 2:8, 3:10] = 1
    gt[:, 10:16, 15:25] = 2
    return gt


def test_evaluate_sequence_scores_a_missing_object_as_empty():
    gt = two_object_clip()
    pred = np.where(gt == 1, 1, 0).astype(np.uint8)
    scores = evaluate_sequence(gt, pred)
    assert sorted(scores) == [1, 2]
    assert scores[1] == {"J-Mean": 1.0, "J-Recall": 1.0, "J-Decay": 0.0, "F-Mean": 1.0,
                         "F-Recall": 1.0, "F-Decay": 0.0, "J&F-Mean": 1.0}
    assert scores[2]["J-Mean"] == 0.0 and scores[2]["F-Mean"] == 0.0 and scores[2]["J&F-Mean"] == 0.0


def test_evaluate_sequence_skips_first_and_last_frames():
    gt = two_object_clip()
    pred = gt.copy()
    pred[0] = 0
    pred[-1] = 0  # never scored
    pred[2, gt[2] == 2] = 0  # object 2 lost on one of the three scored frames
    scores = evaluate_sequence(gt, pred)
    assert scores[1]["J-Mean"] == 1.0
    assert scores[2]["J-Mean"] == pytest.approx(2 / 3)
    assert scores[2]["J-Recall"] == pytest.approx(2 / 3)


def test_evaluate_sequence_rejects_an_id_above_the_object_count():
    gt = two_object_clip()
    pred = gt.copy()
    pred[3, 0, 0] = 3
    with pytest.raises(EvaluationError, match="frame 3: prediction has object id 3"):
        evaluate_sequence(gt, pred)


def ids_one_and_three_clip(frames=5, shape=(20, 30)):
    gt = np.zeros((frames, *shape), np.uint8)
    gt[:, 2:8, 3:10] = 1
    gt[:, 10:16, 15:25] = 3
    return gt


def test_evaluate_sequence_scores_exactly_the_given_object_ids():
    gt = ids_one_and_three_clip()
    pred = np.where(gt == 1, 1, 0).astype(np.uint8)  # object 1 perfect, object 3 missed
    scores = evaluate_sequence(gt, pred, object_ids=[3, 1])
    assert sorted(scores) == [1, 3]
    assert scores[1]["J&F-Mean"] == 1.0
    assert (scores[3]["J-Mean"], scores[3]["F-Mean"], scores[3]["J&F-Mean"]) == (0.0, 0.0, 0.0)
    assert np.mean([s["J&F-Mean"] for s in scores.values()]) == 0.5
    # The DAVIS rule (1..max id) adds a phantom object 2, empty in both and so "perfect".
    davis_rule = evaluate_sequence(gt, pred)
    assert sorted(davis_rule) == [1, 2, 3] and davis_rule[2]["J&F-Mean"] == 1.0
    assert np.mean([s["J&F-Mean"] for s in davis_rule.values()]) == pytest.approx(2 / 3)


def test_evaluate_sequence_rejects_a_prediction_id_outside_the_given_ones():
    gt = ids_one_and_three_clip()
    pred = gt.copy()
    pred[2, 0, 0] = 2
    with pytest.raises(EvaluationError, match=r"frame 2: prediction has object id 2 but the scored objects are 1, 3"):
        evaluate_sequence(gt, pred, object_ids=[1, 3])
    pred[2, 0, 0] = 0
    pred[3, 0, 0] = 255
    with pytest.raises(EvaluationError, match=r"frame 3: prediction has object id 255"):
        evaluate_sequence(gt, pred, object_ids=[1, 3])


@pytest.mark.parametrize("object_ids, problem", [([], "empty"), ([0, 1], "1..254"), ([1, 255], "1..254"),
                                                 ([1.5], "integers")])
def test_evaluate_sequence_rejects_bad_object_ids(object_ids, problem):
    gt = ids_one_and_three_clip()
    with pytest.raises(EvaluationError, match=problem):
        evaluate_sequence(gt, gt, object_ids=object_ids)
