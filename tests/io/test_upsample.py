"""Integer-factor upsampling against GDAL's warper, window by window."""

from __future__ import annotations

import numpy as np
import pytest
from osgeo import gdal

from watergee.io.bandstack import UpsampledBand
from watergee.io.raster import open_raster, utm_grid, write_array
from watergee.io.upsample import native_span, upsample

ORIGIN = (399960.0, 5800020.0)


def _band(tmp_path, factor: int, rows: int = 30, cols: int = 37, seed: int = 0):
    rng = np.random.default_rng(seed)
    dn = rng.integers(1, 10000, (rows, cols)).astype(np.uint16)
    dn[rng.random(dn.shape) < 0.05] = 0
    dn[8:12, 4:9] = 0
    dn[:, -1] = 0
    path = tmp_path / f"band{factor}.tif"
    write_array(path, dn, utm_grid(32633, ORIGIN, 10 * factor, cols, rows))
    fine = utm_grid(32633, ORIGIN, 10, cols * factor, rows * factor)
    return path, fine


def _warped(path, fine, method: str) -> np.ndarray:
    out = gdal.Warp("", str(path), format="MEM", outputBounds=fine.bounds, width=fine.width,
                    height=fine.height, resampleAlg=method, srcNodata=0, dstNodata=0)  # fmt: skip
    return out.ReadAsArray().astype(np.int64)


@pytest.mark.parametrize(("factor", "method"), [(2, "bilinear"), (2, "near"), (6, "near")])
def test_equals_gdal_warp_exactly(tmp_path, factor, method):
    path, fine = _band(tmp_path, factor)
    band = UpsampledBand.of(open_raster(path), fine, method, 0)
    ours = band.read(0, 0, fine.width, fine.height).astype(np.int64)
    assert np.array_equal(ours, _warped(path, fine, method))


@pytest.mark.parametrize("factor", [3, 6])
def test_bilinear_other_factors_within_one_unit_of_gdal(tmp_path, factor):
    path, fine = _band(tmp_path, factor)
    band = UpsampledBand.of(open_raster(path), fine, "bilinear", 0)
    ours = band.read(0, 0, fine.width, fine.height).astype(np.int64)
    warped = _warped(path, fine, "bilinear")
    assert np.array_equal(ours == 0, warped == 0)
    assert np.abs(ours - warped).max() <= 1
    assert (ours == warped).mean() > 0.95


def test_windows_equal_the_whole_band(tmp_path):
    path, fine = _band(tmp_path, 2)
    band = UpsampledBand.of(open_raster(path), fine, "bilinear", 0)
    whole = band.read(0, 0, fine.width, fine.height)
    pieces = np.full_like(whole, 1)
    for row in range(-3, fine.height, 17):  # windows hanging over the edges too
        for col in range(-5, fine.width, 23):
            r0, c0 = max(row, 0), max(col, 0)
            r1, c1 = min(row + 17, fine.height), min(col + 23, fine.width)
            pieces[r0:r1, c0:c1] = band.read(c0, r0, c1 - c0, r1 - r0)
    assert np.array_equal(pieces, whole)


def test_known_values_and_nodata_rules():
    """Factor 2 weights 1/4, 3/4 per axis; no-data neighbours drop out, a no-data pixel's own
    output stays no data, and halves round up."""
    values = np.array([[0, 0, 0, 0], [0, 16, 32, 0], [0, 48, 7, 0], [0, 0, 0, 0]], np.uint16)
    valid = np.zeros((4, 4), bool)
    valid[1:3, 1:3] = True
    valid[2, 2] = False  # the 7 is no data
    out, ok = upsample(values, valid, 2, "bilinear", (-1, -1), (0, 0, 4, 4))
    # output (1, 1): native centre (0.75, 0.75) -> neighbours (0,0) 9/16 and (0,1), (1,0) 3/16
    assert out[1, 1] == round((9 * 16 + 3 * 32 + 3 * 48) / 15)
    assert out[0, 0] == 16  # corner: only its own pixel is inside
    assert out[1, 2] == 30  # (3 * 16 + 9 * 32 + 1 * 48) / 13 = 29.5...
    assert not ok[2:, 2:].any() and ok[:2].all() and ok[2:, :2].all()
    rows = np.array([[9, 9], [2, 0]], np.uint16)  # native row -1 is beyond the raster
    inside = np.array([[False, False], [True, True]])
    out, _ = upsample(rows, inside, 2, "near", (-1, 0), (0, 1, 1, 2))
    assert out.tolist() == [[2, 0]]
    out, _ = upsample(rows, inside, 2, "bilinear", (-1, 0), (0, 1, 1, 2))
    assert out.tolist() == [[2, 1]]  # 3/4 * 2 = 1.5 -> 2 and 1/4 * 2 = 0.5 -> 1: halves round up


def test_native_span_covers_each_output():
    for factor in (2, 3, 6):
        for start in range(-4, 9):
            first, stop = native_span(start, 5, factor)
            centres = (np.arange(start, start + 5) + 0.5) / factor - 0.5
            assert first <= np.floor(centres).min() and np.floor(centres).max() + 1 < stop


@pytest.mark.parametrize("factor", [2, 3, 4])
@pytest.mark.parametrize("dtype", [np.uint16, np.int16, np.float32])
def test_a_block_without_no_data_gives_what_the_general_rule_gives(factor, dtype):
    """A block whose pixels are all valid skips the weights' sums (always (2 factor)^2 there);
    the same block with one more column, of no data and read by no output, takes the general
    rule: both must agree exactly, negative values and floats included."""
    rng = np.random.default_rng(factor)
    window = (5, 7, 13, 11)  # row, col, height, width
    (r0, r1), (c0, c1) = native_span(5, 13, factor), native_span(7, 11, factor)
    low = -5000 if np.issubdtype(dtype, np.signedinteger) or dtype == np.float32 else 0
    block = rng.uniform(low, 9999, (r1 - r0, c1 - c0 + 1)).astype(dtype)
    valid = np.ones(block.shape, bool)
    valid[:, -1] = False
    fast, fast_valid = upsample(block[:, :-1], valid[:, :-1], factor, "bilinear", (r0, c0), window)
    general, general_valid = upsample(block, valid, factor, "bilinear", (r0, c0), window)
    assert fast_valid.all() and general_valid.all()
    assert fast.dtype == general.dtype == dtype
    np.testing.assert_array_equal(fast, general)
