"""Stages called as plain functions on synthetic tiles with known answers."""

import numpy as np
import pytest
from osgeo import gdal

from tests.conftest import ORIGIN, coded_bands, write_band_folder
from watergee.core import layout
from watergee.core.config import load_settings
from watergee.core.errors import GridMismatchError, MissingBandError, TileInputError
from watergee.core.tiles import Tile
from watergee.io.raster import open_raster, raster_grid, utm_grid, write_array
from watergee.sentinel2 import BANDS_20M, STACK_ORDER
from watergee.spectral import line_filter
from watergee.stages.combine import combine
from watergee.stages.indices import indices
from watergee.stages.resample import resample


def _ramp_tile(tmp_path, suffix=".tif"):
    """10 m bands 40x40; 20 m bands 20x20 whose DN is 1000 + 100 * col (B05..B12) or
    1000 + 100 * row (B8A), so bilinear resampling has an exact known answer."""
    bands = {b: np.full((40, 40), 500, np.uint16) for b in ("B02", "B03", "B04", "B08")}
    rows, cols = np.mgrid[0:20, 0:20]
    for b in BANDS_20M:
        bands[b] = (1000 + 100 * (rows if b == "B8A" else cols)).astype(np.uint16)
    source = write_band_folder(tmp_path / "ramp", bands, suffix=suffix)
    return Tile("T33XYZ_20240101T100000", source)


def test_bilinear_resampling_has_the_exact_interpolated_values(tmp_path):
    tile = _ramp_tile(tmp_path)
    out = tmp_path / "work"
    result = resample(tile, load_settings(), out)
    assert len(result.outputs) == 6
    b05 = open_raster(layout.resampled_band(out, tile, "B05")).ReadAsArray()
    b8a = open_raster(layout.resampled_band(out, tile, "B8A")).ReadAsArray()
    # 10 m pixel i has its centre at 20 m pixel coordinate i/2 - 1/4.
    i = np.arange(1, 39)
    expected = 1000 + 50 * i - 25
    np.testing.assert_array_equal(b05[5, 1:39], expected)
    np.testing.assert_array_equal(b8a[1:39, 7], expected)
    assert (b05 == b05[0:1]).all()  # constant down each column


def test_nearest_resampling_replicates_pixels_and_keeps_georeferencing(tmp_path):
    tile = _ramp_tile(tmp_path, suffix=".jp2")
    out = tmp_path / "work"
    resample(tile, load_settings(None, ["resample.method=near"]), out)
    path = layout.resampled_band(out, tile, "B11")
    data = open_raster(path).ReadAsArray()
    np.testing.assert_array_equal(data[3], 1000 + 100 * (np.arange(40) // 2))
    b02 = next(tile.source.glob("*_B02.jp2"))
    assert raster_grid(path).matches(raster_grid(b02))
    ds = open_raster(path)
    band = ds.GetRasterBand(1)
    assert band.GetNoDataValue() == 0 and band.GetDescription() == "B11"
    assert band.GetScale() == pytest.approx(1e-4) and band.GetOffset() == 0


def test_resampling_does_not_smear_nodata(tmp_path):
    tile = _ramp_tile(tmp_path)
    b05 = next(tile.source.glob("*_B05.tif"))
    data = open_raster(b05).ReadAsArray()
    data[:, :5] = 0  # no data in the first 100 m
    write_array(b05, data, raster_grid(b05))
    out = tmp_path / "work"
    resample(tile, load_settings(), out)
    result = open_raster(layout.resampled_band(out, tile, "B05")).ReadAsArray()
    assert (result[:, :10] == 0).all()
    assert (result[:, 10:] >= 1500).all()  # valid pixels never mix in the zeros


def test_resample_refuses_a_band_of_another_extent(tmp_path):
    tile = _ramp_tile(tmp_path)
    b12 = next(tile.source.glob("*_B12.tif"))
    shifted = utm_grid(32633, (ORIGIN[0] + 2000, ORIGIN[1]), 20, 20, 20)
    write_array(b12, np.ones((20, 20), np.uint16), shifted)
    with pytest.raises(GridMismatchError, match=rf"^{b12}: extent .* differs from .*_B02.tif"):
        resample(tile, load_settings(), tmp_path / "work")


def _coded_tile(tmp_path, out):
    source = write_band_folder(tmp_path / "coded", coded_bands(32))
    tile = Tile("T33XYZ_20240101T100000", source)
    resample(tile, load_settings(None, ["resample.method=near"]), out)
    return tile


def test_combine_stacks_every_band_in_order_pixel_by_pixel(tmp_path):
    out = tmp_path / "work"
    tile = _coded_tile(tmp_path, out)
    result = combine(tile, load_settings(), out)
    stack = open_raster(result.outputs[0])
    assert stack.RasterCount == 10
    assert [stack.GetRasterBand(i + 1).GetDescription() for i in range(10)] == list(STACK_ORDER)
    assert stack.GetMetadataItem("BAND_ORDER") == ",".join(STACK_ORDER)
    data = stack.ReadAsArray()
    codes = coded_bands(32)
    for k, band in enumerate(STACK_ORDER):
        if band in BANDS_20M:
            expected = np.repeat(np.repeat(codes[band], 2, axis=0), 2, axis=1)
        else:
            expected = codes[band]
        np.testing.assert_array_equal(data[k], expected, err_msg=band)
        assert stack.GetRasterBand(k + 1).GetNoDataValue() == 0
    assert raster_grid(result.outputs[0]).matches(raster_grid(result.inputs[0]))
    assert stack.GetMetadataItem("COMPRESSION", "IMAGE_STRUCTURE") == "ZSTD"  # intermediate
    assert stack.GetRasterBand(1).GetBlockSize() == [512, 512]


def test_combine_names_both_files_of_a_grid_mismatch(tmp_path):
    out = tmp_path / "work"
    tile = _coded_tile(tmp_path, out)
    b07 = layout.resampled_band(out, tile, "B07")
    write_array(
        b07, np.ones((32, 32), np.uint16), utm_grid(32633, (ORIGIN[0] + 10, ORIGIN[1]), 10, 32, 32)
    )
    with pytest.raises(GridMismatchError, match=rf"^{b07}: grid differs from .*_B02.tif"):
        combine(tile, load_settings(), out)


def test_combine_without_resample_says_what_to_run(tmp_path):
    source = write_band_folder(tmp_path / "coded", coded_bands(16))
    tile = Tile("T33XYZ_20240101T100000", source)
    with pytest.raises(MissingBandError, match=r"B05 at 10 m not found \(run `watergee resample"):
        combine(tile, load_settings(), tmp_path / "work")


def test_combine_names_a_corrupt_band_file(tmp_path):
    out = tmp_path / "work"
    tile = _coded_tile(tmp_path, out)
    b03 = next(tile.source.glob("*_B03.tif"))
    b03.write_bytes(b03.read_bytes()[:300])
    with pytest.raises(TileInputError, match=rf"^{b03}: "):
        combine(tile, load_settings(), out)


def _stack_from_reflectance(tmp_path, refl: dict[str, np.ndarray], offset=-1000):
    """A combined stack written directly, with L2A scaling (offset -1000)."""
    out = tmp_path / "work"
    tile = Tile("T33XYZ_20240101T100000", tmp_path / "unused")
    shape = next(iter(refl.values())).shape
    grid = utm_grid(32633, ORIGIN, 10, shape[1], shape[0])
    planes = []
    for band in STACK_ORDER:
        values = refl.get(band, np.full(shape, 0.1))
        planes.append(np.rint(values * 10000 - offset).astype(np.uint16))
    path = layout.stack(out, tile)
    write_array(path, np.stack(planes), grid, nodata=0)
    ds = gdal.Open(str(path), gdal.GA_Update)
    for k, band in enumerate(STACK_ORDER, start=1):
        ds.GetRasterBand(k).SetDescription(band)
        ds.GetRasterBand(k).SetScale(1e-4)
        ds.GetRasterBand(k).SetOffset(offset * 1e-4)
    ds = None
    return tile, out


def test_indices_from_reflectance_with_the_baseline_offset(tmp_path):
    shape = (20, 30)
    refl = {
        "B03": np.full(shape, 0.30),
        "B11": np.full(shape, 0.10),
        "B08": np.full(shape, 0.50),
        "B04": np.full(shape, 0.25),
    }
    refl["B03"][4, 5] = 0.0  # stored as DN 1000: reflectance 0, so MNDWI = -1 exactly
    tile, out = _stack_from_reflectance(tmp_path, refl)
    result = indices(tile, load_settings(), out)
    ds = open_raster(result.outputs[0])
    names = [ds.GetRasterBand(i + 1).GetDescription() for i in range(ds.RasterCount)]
    assert names == ["NDWI", "MNDWI", "NDVI", "LINE"]
    ndwi, mndwi, ndvi, line = ds.ReadAsArray()
    assert ndwi[10, 10] == pytest.approx((0.3 - 0.5) / 0.8, abs=1e-6)
    assert mndwi[10, 10] == pytest.approx(0.5, abs=1e-6)
    assert ndvi[10, 10] == pytest.approx(0.25 / 0.75, abs=1e-6)
    # DN ratios without the offset would give (4000 - 2000) / (4000 + 2000) = 1/3 instead.
    assert mndwi[4, 5] == pytest.approx(-1.0, abs=1e-6)
    assert np.isnan(line[:2]).all() and np.isnan(line[:, -2:]).all()
    assert line[10, 10] == pytest.approx(0.0, abs=1e-6)


def test_line_band_equals_the_four_kernel_definition_across_window_seams(tmp_path):
    rng = np.random.default_rng(3)
    shape = (150, 170)
    green = rng.uniform(0.02, 0.4, shape)
    swir = rng.uniform(0.01, 0.4, shape)
    swir[70, 80] = 0.0  # stack DN 1000: reflectance 0 is valid data, not nodata
    tile, out = _stack_from_reflectance(tmp_path, {"B03": green, "B11": swir})
    # 64 px windows put seams at 64 and 128 in both directions.
    indices(tile, load_settings(None, ["output.window=64", "indices.indices=[MNDWI, LINE]"]), out)
    mndwi, line = open_raster(layout.indices(out, tile)).ReadAsArray().astype(np.float64)
    g = np.rint(green * 10000) / 10000
    s = np.rint(swir * 10000) / 10000
    m = (g - s) / (g + s)
    np.testing.assert_allclose(mndwi, m, atol=2e-6)
    kernels = [np.zeros((5, 5)) for _ in range(4)]
    kernels[0][[0, 2, 4], 2] = (-1, 2, -1)
    kernels[1][[0, 2, 4], [0, 2, 4]] = (-1, 2, -1)
    kernels[2][[0, 2, 4], [4, 2, 0]] = (-1, 2, -1)
    kernels[3][2, [0, 2, 4]] = (-1, 2, -1)
    expected = np.full(shape, np.nan)
    for r in range(2, shape[0] - 2):
        for c in range(2, shape[1] - 2):
            patch = m[r - 2 : r + 3, c - 2 : c + 3]
            expected[r, c] = max((k * patch).sum() for k in kernels)
    np.testing.assert_allclose(line, expected, atol=1e-5, equal_nan=True)
    assert np.isnan(line[:2]).all() and np.isnan(line[-2:]).all()
    assert not np.isnan(line[2:-2, 2:-2]).any()


def test_line_filter_propagates_nodata():
    values = np.zeros((9, 9), np.float32)
    values[4, 4] = np.nan
    out = line_filter(values)
    assert out.shape == (5, 5)
    assert np.isnan(out[2, 2]) and np.isnan(out[0, 0]) and not np.isnan(out[0, 1])


def test_indices_mark_nodata_and_find_the_demo_water(demo_tiles, tmp_path):
    out = tmp_path / "work"
    settings = load_settings()
    for tile in demo_tiles:
        for stage in (resample, combine, indices):
            stage(tile, settings, out)
        mndwi = open_raster(layout.indices(out, tile)).ReadAsArray()[1]
        truth = open_raster(next((tile.source.parent / "truth").glob(f"{tile.id}*")))
        water = truth.ReadAsArray() == 1
        assert 0.05 < water.mean() < 0.4
        agreement = ((mndwi > 0) == water).mean()
        assert agreement > 0.98, (tile.id, agreement)
