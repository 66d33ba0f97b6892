"""Patches cut block by block equal the patches read one by one, indices and edges included."""

import numpy as np
import pytest

from tests.conftest import ORIGIN
from watergee.core.errors import TileInputError
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


def test_an_index_whose_band_is_missing_names_the_band_and_the_setting(tmp_path):
    path = tmp_path / "landsat.tif"
    write_array(path, np.ones((6, 8, 8), np.float32), utm_grid(32633, ORIGIN, 30, 8, 8))
    reader = FeatureReader.open(open_raster(path), [], ["NDWI", "MNDWI"])
    with pytest.raises(TileInputError) as caught:
        reader.read(Window(0, 0, 8, 8))
    assert str(caught.value) == (
        f"{path}: no band described as B03, which the index channel NDWI reads; a stack "
        "without Sentinel-2 band names needs its indices set to [] (sample.indices, "
        "denoise.indices) and a model trained so"
    )
