"""Accuracy and area estimators against hand-computed values and Olofsson et al. (2014)."""

import math

import numpy as np
import pytest

from watergee.accuracy import Matrix, allocate, area_adjusted, kappa, sample_accuracy, wilson

#: Olofsson et al. (2014), Remote Sensing of Environment 148, 42-57, section 5 and Table 8:
#: a stratified sample of 640 Landsat pixels (30 m) over four map classes. Rows: map,
#: columns: reference (deforestation, forest gain, stable forest, stable non-forest).
OLOFSSON_COUNTS = [[66, 0, 5, 4], [0, 55, 8, 12], [1, 0, 153, 11], [2, 1, 9, 313]]
OLOFSSON_MAPPED = {1: 200_000, 2: 150_000, 3: 3_200_000, 4: 6_450_000}
#: Their published estimates: area (ha) and the half-width of its 95 % interval, user's and
#: producer's accuracy each with its half-width, and overall accuracy 0.95 +- 0.02.
OLOFSSON_AREA_HA = {1: (21_158, 6_158), 2: (11_686, 3_756), 3: (285_770, 15_510),
                    4: (581_386, 16_282)}  # fmt: skip
OLOFSSON_USERS = {1: (0.88, 0.07), 2: (0.73, 0.10), 3: (0.93, 0.04), 4: (0.96, 0.02)}
OLOFSSON_PRODUCERS = {1: (0.75, 0.21), 2: (0.85, 0.25), 3: (0.93, 0.03), 4: (0.96, 0.02)}


@pytest.fixture
def olofsson():
    matrix = Matrix((1, 2, 3, 4), np.array(OLOFSSON_COUNTS))
    return area_adjusted(matrix, OLOFSSON_MAPPED, pixel_area=900.0)


def test_olofsson_areas_match_the_published_example(olofsson):
    for code, (area, half) in OLOFSSON_AREA_HA.items():
        entry = olofsson["classes"][code]
        assert round(entry["area_m2"] / 1e4) == area
        se_ha = entry["area_proportion_se"] * 10_000_000 * 900 / 1e4
        assert round(1.96 * se_ha) == half  # the paper's z
        assert entry["area_m2_ci"][1] - entry["area_m2"] == pytest.approx(
            olofsson["z"] * se_ha * 1e4
        )
        assert entry["area_pixels"] == pytest.approx(entry["area_m2"] / 900)


def test_olofsson_accuracies_match_the_published_example(olofsson):
    z = olofsson["z"]
    for code, (value, half) in OLOFSSON_USERS.items():
        entry = olofsson["classes"][code]
        assert round(entry["users_accuracy"], 2) == value
        assert round(z * entry["users_accuracy_se"], 2) == half
    for code, (value, half) in OLOFSSON_PRODUCERS.items():
        entry = olofsson["classes"][code]
        assert round(entry["producers_accuracy"], 2) == value
        assert round(z * entry["producers_accuracy_se"], 2) == half
    assert round(olofsson["overall_accuracy"], 2) == 0.95
    assert round(z * olofsson["overall_accuracy_se"], 2) == 0.02
    # the intervals of accuracies stay within [0, 1]; forest gain's would pass 1
    assert olofsson["classes"][2]["producers_accuracy_ci"][1] == 1.0


def test_error_matrix_in_area_proportions_sums_to_one(olofsson):
    p = np.array(olofsson["error_matrix_proportions"])
    assert p.sum() == pytest.approx(1.0)
    assert p[0, 0] == pytest.approx(0.02 * 66 / 75)  # W_1 n_11 / n_1.
    assert p.sum(axis=1) == pytest.approx([0.02, 0.015, 0.32, 0.645])


def test_a_mapped_class_without_two_sample_units_is_refused():
    matrix = Matrix((1, 2), np.array([[10, 0], [0, 1]]))
    with pytest.raises(ValueError, match="mapped class 2 has 1 sample unit"):
        area_adjusted(matrix, {1: 100, 2: 50}, None)
    with pytest.raises(ValueError, match="mapped class 3 has no sample units"):
        area_adjusted(Matrix((1, 2), np.array([[10, 0], [0, 5]])), {0: 0, 1: 9, 2: 9, 3: 5}, None)


def test_a_reference_class_never_mapped_gets_an_area_but_no_users_accuracy():
    # class 3 appears only in the reference: its area comes from the other strata
    matrix = Matrix.from_pairs({(1, 1): 8, (1, 3): 2, (2, 2): 10}, ())
    result = area_adjusted(matrix, {1: 1000, 2: 1000}, None)
    three = result["classes"][3]
    assert three["users_accuracy"] is None and three["mapped_pixels"] == 0
    assert three["area_pixels"] == pytest.approx(1000 * 2 / 10)
    assert three["producers_accuracy"] == 0.0


def test_two_class_counts_by_hand():
    # rows map, columns reference: 40 10 / 5 45
    result = sample_accuracy(Matrix((0, 1), np.array([[40, 10], [5, 45]])))
    assert result["overall_accuracy"] == 0.85
    # p_e = 0.5 * 0.45 + 0.5 * 0.55 = 0.5 -> kappa = (0.85 - 0.5) / 0.5
    assert result["kappa"] == pytest.approx(0.7)
    one = result["classes"][1]
    assert one["users_accuracy"] == 0.9 and one["producers_accuracy"] == pytest.approx(45 / 55)
    assert one["f1"] == pytest.approx(90 / 105) and one["iou"] == pytest.approx(45 / 60)
    # Wilson interval of 85 / 100
    low, high = result["overall_accuracy_ci"]
    assert (round(low, 4), round(high, 4)) == (0.7672, 0.9069)
    # F1's interval is the IoU's carried through F1 = 2 IoU / (1 + IoU)
    iou_low = one["iou_ci"][0]
    assert one["f1_ci"][0] == pytest.approx(2 * iou_low / (1 + iou_low))


def test_kappa_variance_by_hand():
    # theta1 0.85, theta2 0.5, theta3 0.8525, theta4 1.0025 (Congalton & Green):
    # var = (0.51 - 0.006 + 0.0009) / 100
    value, se = kappa(np.array([[40, 10], [5, 45]]))
    assert value == pytest.approx(0.7)
    assert se == pytest.approx(math.sqrt(0.5049 / 100))


def test_kappa_of_a_single_class_is_undefined():
    assert kappa(np.array([[7]])) == (None, None)


def test_wilson_interval():
    assert wilson(0, 0, 1.96) is None
    low, high = wilson(10, 10, 1.959964)
    assert high == pytest.approx(1.0) and round(low, 4) == 0.7225


def test_allocation_is_proportional_with_a_floor_for_rare_classes():
    assert allocate({1: 9000, 2: 1000}, 100, 20) == {1: 80, 2: 20}
    assert allocate({1: 5000, 2: 5000}, 100, 20) == {1: 50, 2: 50}
    # a class with fewer pixels than the floor gives them all
    assert allocate({1: 9990, 2: 10}, 100, 20) == {1: 90, 2: 10}
    assert allocate({}, 10, 2) == {}
