"""The checks on water: known answers for the relabelling and for when they apply."""

import numpy as np
import pytest
from osgeo import gdal

from watergee.waterchecks import reflectance_problem, swir_check, vegetation_check, water_index

CLASSES = np.array([4, 7, 9])  # water is 7, the second output


def test_bright_water_takes_the_next_class_and_probabilities_agree_with_it():
    labels = np.array([[7, 7, 7, 7, 4, 7]])
    swir = np.array([[0.02, 0.3, 0.3, np.nan, 0.5, 0.3]], np.float32)
    valid = np.array([[True, True, True, True, True, False]])
    p = np.array([[[0.1, 0.8, 0.1], [0.1, 0.6, 0.3], [0.0, 1.0, 0.0], [0.1, 0.9, 0.0],
                   [0.9, 0.1, 0.0], [0.2, 0.7, 0.1]]], np.float32)  # fmt: skip
    before = p.copy()
    guard = swir_check(water=1, band="B11", limit=0.15)
    guard.apply(labels, p, valid, {"B11": swir}, CLASSES)
    assert (guard.changed, guard.unclassified) == (1, 1)
    # dark water, no SWIR value, not water, not valid: untouched
    np.testing.assert_array_equal(labels[0, [0, 1, 3, 4, 5]], [7, 9, 7, 4, 7])
    np.testing.assert_array_equal(p[0, [0, 2, 3, 4, 5]], before[0, [0, 2, 3, 4, 5]])
    np.testing.assert_allclose(p[0, 1], [0.25, 0, 0.75])  # 0.1 and 0.3 rescaled to sum to 1
    # a model certain of water leaves no next class: no data, not an arbitrary class
    np.testing.assert_array_equal(valid, [[True, True, False, True, True, False]])


def test_green_water_bright_in_the_near_infrared_takes_the_next_class():
    # NDVI:    0.6 (NIR 0.2)   0.6 (NIR 0.06)  0.2 (NIR 0.2)  0.6 (NIR 0.2)  -0.5   0.6, NaN red
    red = np.array([[0.05, 0.015, 0.1333, 0.05, 0.06, np.nan]], np.float32)
    nir = np.array([[0.2, 0.06, 0.2, 0.2, 0.02, 0.2]], np.float32)
    labels = np.array([[7, 7, 7, 4, 7, 7]])
    valid = np.ones_like(labels, bool)
    p = np.tile(np.array([0.2, 0.7, 0.1], np.float32), (1, 6, 1))
    check = vegetation_check(water=1, red="B04", nir="B08", max_ndvi=0.25, min_nir=0.1)
    check.apply(labels, p, valid, {"B04": red, "B08": nir}, CLASSES)
    assert check.rule == "NDVI(B04, B08) > 0.25 and B08 > 0.1"
    assert (check.changed, check.unclassified) == (1, 0)
    # vegetation -> its next class (4); dark in the NIR, NDVI low, not water, no red: untouched
    np.testing.assert_array_equal(labels, [[4, 7, 7, 4, 7, 7]])
    np.testing.assert_allclose(p[0, 0], [2 / 3, 0, 1 / 3])
    np.testing.assert_allclose(p[0, 1:], np.tile([0.2, 0.7, 0.1], (5, 1)), rtol=1e-6)


def test_the_vegetation_check_is_strict_and_needs_a_defined_ndvi():
    # NDVI exactly 0.25 (binary fractions: exact in float32), red + NIR = 0, NDVI 0.2500x
    red = np.array([[0.375, -0.2, 0.3749]], np.float32)
    nir = np.array([[0.625, 0.2, 0.625]], np.float32)
    labels, valid = np.full((1, 3), 7), np.ones((1, 3), bool)
    p = np.tile(np.array([0.2, 0.7, 0.1], np.float32), (1, 3, 1))
    check = vegetation_check(water=1, red="B04", nir="B08", max_ndvi=0.25, min_nir=0.1)
    check.apply(labels, p, valid, {"B04": red, "B08": nir}, CLASSES)
    np.testing.assert_array_equal(labels, [[7, 7, 4]])


def test_water_is_found_by_id_or_by_name():
    names, ids = ["Land", " Water ", "urban"], [1, 5, 3]
    assert water_index(names, ids, None) == 1
    assert water_index(names, ids, 3) == 2
    assert water_index(names, ids, 8) is None
    assert water_index(["land", "non-water"], [0, 1], None) is None


@pytest.mark.parametrize(
    ("dtype", "scale", "offset", "fill", "problem"),
    [
        (gdal.GDT_UInt16, 1e-4, 0.0, 1500, None),
        (gdal.GDT_UInt16, None, None, 1500, "integers without a scale"),
        (gdal.GDT_UInt16, None, -0.1, 1500, "integers without a scale"),  # an offset alone
        (gdal.GDT_Int16, 1e-4, -0.1, 1500, None),
        (gdal.GDT_Float32, None, None, 0.15, None),  # reflectance stored as floats
        (gdal.GDT_Float32, None, None, 1500, "median of 1500"),  # digital numbers as floats
    ],
)
def test_only_a_band_of_reflectance_is_judged(dtype, scale, offset, fill, problem):
    ds = gdal.GetDriverByName("MEM").Create("", 8, 8, 1, dtype)
    band = ds.GetRasterBand(1)
    band.Fill(fill)
    if scale is not None:
        band.SetScale(scale)
    if offset is not None:
        band.SetOffset(offset)
    found = reflectance_problem(ds, 1)
    assert found is None if problem is None else problem in found


def test_the_most_probable_class_is_argmaxs_and_can_leave_one_out():
    from watergee.waterchecks import most_probable

    classes = np.array([4, 7, 9])
    p = np.random.default_rng(2).random((40, 50, 3)).astype(np.float32)
    p[0, :3] = [[0.5, 0.5, 0.0], [0.2, 0.4, 0.4], [0.3, 0.3, 0.3]]  # ties: the first wins
    np.testing.assert_array_equal(most_probable(p, classes), classes[p.argmax(-1)])
    masked = p.copy()
    masked[..., 1] = -1
    np.testing.assert_array_equal(most_probable(p, classes, skip=1), classes[masked.argmax(-1)])
    assert list(most_probable(p, classes, skip=1)[0, :3]) == [4, 9, 4]
