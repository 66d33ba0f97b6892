import numpy as np
import pytest
from osgeo import gdal

from watergee.core.config import OutputSettings
from watergee.io.overviews import block_modes, fill_mode_overviews, overview_factors
from watergee.io.raster import to_cog

gdal.UseExceptions()


def test_a_block_mode_is_the_value_first_to_reach_the_top_count_and_skips_no_data():
    pixels = np.array(
        [[1, 2, 1, 2, 9, 9, 9, 9, 5],
         [2, 1, 3, 4, 9, 9, 2, 3, 5],
         [4, 4, 7, 7, 1, 2, 6, 6, 9]],
        np.uint8,
    )  # fmt: skip
    # blocks in row order: 1 2 2 1 -> 2 reaches two first; 1 2 3 4 -> 1; all no data; 9 9 2 3
    # -> 2; a half block 5 5 -> 5; bottom row halves: 4 4, 7 7, 1 2 -> 1, 6 6, 9 -> no data
    assert block_modes(pixels, 9).tolist() == [[2, 1, 9, 2, 5], [4, 7, 1, 6, 9]]
    # without no data every pixel counts (9 9 2 3 -> 9), the padding of the odd sides none
    assert block_modes(pixels, None).tolist() == [[2, 1, 9, 9, 5], [4, 7, 1, 6, 9]]


def test_factors_halve_until_a_level_fits_one_block():
    assert overview_factors(2048, 1024, 128) == [2, 4, 8, 16]
    assert overview_factors(1003, 1001, 128) == [2, 4, 8]
    assert overview_factors(128, 100, 128) == []
    assert overview_factors(257, 10, 128) == [2]  # sides rounded down, as GDAL's COG driver does


def _scratch(path, pixels, nodata, dtype=gdal.GDT_Byte):
    ds = gdal.GetDriverByName("GTiff").Create(
        str(path), pixels.shape[1], pixels.shape[0], 1, dtype,
        ["TILED=YES", "BLOCKXSIZE=128", "BLOCKYSIZE=128", "COMPRESS=ZSTD"],
    )  # fmt: skip
    ds.SetGeoTransform((500000.0, 10.0, 0.0, 5800000.0, 0.0, -10.0))
    if nodata is not None:
        ds.GetRasterBand(1).SetNoDataValue(nodata)
    ds.GetRasterBand(1).WriteArray(pixels)
    ds = None
    return path


def _levels(path):
    ds = gdal.Open(str(path))
    band = ds.GetRasterBand(1)
    assert ds.GetMetadata("IMAGE_STRUCTURE").get("LAYOUT") == "COG"
    return [band.GetOverview(i).ReadAsArray() for i in range(band.GetOverviewCount())]


def test_mode_overviews_equal_gdals_where_its_windows_are_the_aligned_blocks(tmp_path):
    # four classes in random order: ties in about a third of the blocks; 0 is no data
    pixels = np.random.default_rng(3).integers(0, 4, (512, 768), dtype=np.uint8)
    scratch = _scratch(tmp_path / "s.tif", pixels, 0)
    options = ["OVERVIEW_RESAMPLING=MODE", "BLOCKSIZE=128"]
    gdal.Translate(str(tmp_path / "gdal.tif"), str(scratch), format="COG", creationOptions=options)
    to_cog(scratch, tmp_path / "ours.tif", tmp_path / "ours.tif",
           OutputSettings(blocksize=128), "MODE")  # fmt: skip
    ours, theirs = _levels(tmp_path / "ours.tif"), _levels(tmp_path / "gdal.tif")
    assert len(ours) == len(theirs) == 3
    for mine, gdals in zip(ours, theirs, strict=True):
        np.testing.assert_array_equal(mine, gdals)
    assert not scratch.exists()
    np.testing.assert_array_equal(gdal.Open(str(tmp_path / "ours.tif")).ReadAsArray(), pixels)


def test_odd_sides_give_levels_of_aligned_blocks_with_the_partial_ones_at_the_edges(tmp_path):
    # every aligned 8 x 8 block holds one class, or no data (255): each overview pixel of
    # factor 2, 4 or 8 is its block's class, right up to the partial blocks of odd sides
    blocks = np.random.default_rng(5).integers(0, 6, (126, 126)).astype(np.uint8)
    blocks[blocks == 5] = 255
    pixels = np.kron(blocks, np.ones((8, 8), np.uint8))[:1001, :1003]
    ours = tmp_path / "ours.tif"
    to_cog(_scratch(tmp_path / "s.tif", pixels, 255), ours, ours,
           OutputSettings(blocksize=128), "MODE")  # fmt: skip
    levels = _levels(ours)
    assert [level.shape for level in levels] == [(501, 502), (251, 251), (126, 126)]
    for factor, level in zip((2, 4, 8), levels, strict=True):
        np.testing.assert_array_equal(level, pixels[::factor, ::factor])


@pytest.mark.parametrize(
    ("dtype", "nodata"),
    [(gdal.GDT_Float32, None), (gdal.GDT_UInt32, 0), (gdal.GDT_UInt16, 1.5),
     (gdal.GDT_Byte, -9999)],
)  # fmt: skip
def test_rasters_whose_modes_gdal_reads_otherwise_are_left_to_gdal(tmp_path, dtype, nodata):
    pixels = np.random.default_rng(1).integers(0, 4, (300, 300))
    path = _scratch(tmp_path / "f.tif", pixels, nodata, dtype)
    ds = gdal.OpenEx(str(path), gdal.OF_RASTER | gdal.OF_UPDATE)
    assert not fill_mode_overviews(ds, 128)
    assert ds.GetRasterBand(1).GetOverviewCount() == 0  # nothing for the COG driver to copy
    ds = None


def test_other_resamplings_keep_gdals_overviews(tmp_path):
    floats = np.random.default_rng(1).random((300, 300)).astype(np.float32)
    path = _scratch(tmp_path / "f.tif", floats, None, gdal.GDT_Float32)
    to_cog(path, tmp_path / "c.tif", tmp_path / "c.tif", OutputSettings(blocksize=128), "AVERAGE")
    first = _levels(tmp_path / "c.tif")[0]
    assert first.shape == (150, 150)
    assert abs(float(first[0, 0]) - float(floats[:2, :2].mean())) < 1e-6


def test_running_out_of_memory_in_the_cog_rewrite_names_the_file_and_leaves_nothing(
    tmp_path, monkeypatch
):
    from watergee.core.errors import OutputError
    from watergee.io import overviews

    def exhausted(*args, **kwargs):
        raise MemoryError

    monkeypatch.setattr(overviews, "fill_mode_overviews", exhausted)
    scratch = _scratch(tmp_path / "s.tif", np.zeros((64, 64), np.uint8), 255)
    final = tmp_path / "classes.tif"
    with pytest.raises(OutputError, match=r"classes.tif: cannot write COG \(out of memory\)"):
        to_cog(scratch, tmp_path / "tmp.tif", final, OutputSettings(blocksize=128), "MODE")
    assert not scratch.exists() and not (tmp_path / "tmp.tif").exists()
