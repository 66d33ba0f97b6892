"""The SWIR check on water: known answers for the relabelling and for when it applies."""

import numpy as np
import pytest
from osgeo import gdal

from watergee.swirguard import SwirGuard, reflectance_problem, water_index

CLASSES = np.array([4, 7, 9])  # water is 7, the second output


def test_bright_water_takes_the_next_class_and_probabilities_agree_with_it():
    labels = np.array([7, 7, 7, 7, 4, 7])
    swir = np.array([0.02, 0.3, 0.3, np.nan, 0.5, 0.3], np.float32)
    valid = np.array([True, True, True, True, True, False])
    p = np.array([[0.1, 0.8, 0.1], [0.1, 0.6, 0.3], [0.0, 1.0, 0.0], [0.1, 0.9, 0.0],
                  [0.9, 0.1, 0.0], [0.2, 0.7, 0.1]], np.float32)  # fmt: skip
    before = p.copy()
    changed = SwirGuard(water=1, limit=0.15).apply(labels, p, valid, swir, CLASSES)
    assert changed == 2
    # dark water, no SWIR value, not water, not valid: untouched
    np.testing.assert_array_equal(labels, [7, 9, 4, 7, 4, 7])
    np.testing.assert_array_equal(p[[0, 3, 4, 5]], before[[0, 3, 4, 5]])
    np.testing.assert_allclose(p[1], [0.25, 0, 0.75])  # 0.1 and 0.3 rescaled to sum to 1
    np.testing.assert_allclose(p[2], [0.5, 0, 0.5])  # a model certain of water: shared evenly
    assert labels[2] == 4  # ties go to the first other class


def test_water_is_found_by_id_or_by_name():
    names, ids = ["Land", " Water ", "urban"], [1, 5, 3]
    assert water_index(names, ids, None) == 1
    assert water_index(names, ids, 3) == 2
    assert water_index(names, ids, 8) is None
    assert water_index(["land", "non-water"], [0, 1], None) is None


@pytest.mark.parametrize(
    ("dtype", "scale", "offset", "problem"),
    [
        (gdal.GDT_UInt16, 1e-4, 0.0, False),
        (gdal.GDT_UInt16, None, None, True),
        (gdal.GDT_Int16, 1e-4, -0.1, False),
        (gdal.GDT_Float32, None, None, False),  # reflectance stored as floats
    ],
)
def test_only_a_band_of_reflectance_is_judged(dtype, scale, offset, problem):
    ds = gdal.GetDriverByName("MEM").Create("", 4, 4, 1, dtype)
    band = ds.GetRasterBand(1)
    if scale is not None:
        band.SetScale(scale)
        band.SetOffset(offset)
    assert (reflectance_problem(band) is not None) == problem
