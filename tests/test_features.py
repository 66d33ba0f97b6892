"""Patches cut block by block equal the patches read one by one, indices and edges included."""

import numpy as np
import pytest

from tests.conftest import ORIGIN
from watergee.features import FeatureReader, extract_patches
from watergee.io.raster import Window, open_raster, utm_grid, write_array


@pytest.mark.parametrize("size", [7, 12])
def test_block_reads_cut_the_same_patches_as_single_reads(tmp_path, size):
    rng = np.random.default_rng(3)
    bands = ["B02", "B03", "B04", "B08", "B11"]
    values = rng.uniform(100, 4000, (len(bands), 45, 53)).astype(np.float32)
    values[1, 20:23, 30] = np.nan  # a hole in green: MNDWI and LINE around it have no data
    path = tmp_path / "stack.tif"
    write_array(path, values, utm_grid(32633, ORIGIN, 10, 53, 45))
    ds = open_raster(path, update=True)
    for number, name in enumerate(bands, start=1):
        ds.GetRasterBand(number).SetDescription(name)
    ds.FlushCache()
    reader = FeatureReader.open(ds, ["B02", "B08"], ["MNDWI", "LINE"])
    rows = np.r_[0, 44, rng.integers(0, 45, 60)]
    cols = np.r_[0, 52, rng.integers(0, 53, 60)]
    patches = extract_patches(reader, rows, cols, size, block=16)
    half = size // 2
    for i, (row, col) in enumerate(zip(rows, cols, strict=True)):
        alone = reader.read(Window(int(col) - half, int(row) - half, size, size))
        np.testing.assert_array_equal(patches[i], np.moveaxis(alone, 0, -1))
    assert np.isnan(patches).any() and np.isfinite(patches).any()
    none = extract_patches(reader, rows[:0], cols[:0], size)
    assert none.shape == (0, size, size, 4)
