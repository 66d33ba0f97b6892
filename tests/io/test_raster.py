import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from osgeo import gdal

from watergee.core.atomic import PARTIAL_MARK
from watergee.core.config import OutputSettings
from watergee.core.errors import GridMismatchError, OutputError, TileInputError
from watergee.io.raster import (
    BandSpec,
    Window,
    create_geotiff,
    iter_windows,
    open_raster,
    raster_grid,
    read_window,
    require_same_grid,
    utm_grid,
    write_array,
)


def _grid(width=10, height=8, origin=(500000.0, 5800000.0), pixel=10.0, epsg=32633):
    return utm_grid(epsg, origin, pixel, width, height)


def test_read_window_with_halo_fills_outside_and_nodata(tmp_path):
    data = np.arange(80, dtype=np.uint16).reshape(8, 10) + 1
    data[0, 1] = 0  # nodata
    path = tmp_path / "a.tif"
    write_array(path, data, _grid(), nodata=0)
    ds = open_raster(path)
    out = read_window(ds, Window(0, 0, 3, 2), halo=2)
    assert out.shape == (1, 6, 7)
    assert np.isnan(out[0, :2, :]).all() and np.isnan(out[0, :, :2]).all()
    inner = out[0, 2:, 2:]
    expected = data[:4, :5].astype(np.float32)
    expected[0, 1] = np.nan
    np.testing.assert_array_equal(inner, expected)


def test_read_window_applies_scale_and_offset(tmp_path):
    path = tmp_path / "a.tif"
    write_array(path, np.full((8, 10), 3000, np.uint16), _grid())
    ds = gdal.Open(str(path), gdal.GA_Update)
    ds.GetRasterBand(1).SetScale(1e-4)
    ds.GetRasterBand(1).SetOffset(-0.1)
    ds = None
    out = read_window(open_raster(path), Window(2, 2, 4, 4), scaled=True)
    np.testing.assert_allclose(out, 0.2, rtol=1e-6)


def test_windows_cover_the_raster_exactly_once():
    cover = np.zeros((70, 130), int)
    for w in iter_windows(130, 70, 32):
        cover[w.row : w.row + w.height, w.col : w.col + w.width] += 1
    assert (cover == 1).all()


def test_create_geotiff_writes_georeferenced_tiled_compressed(tmp_path):
    grid = _grid(40, 30)
    target = tmp_path / "out.tif"
    settings = OutputSettings(blocksize=16)
    data = np.random.default_rng(0).random((2, 30, 40)).astype(np.float32)
    specs = [BandSpec("A", metadata={"K": "v"}), BandSpec("B", scale=2.0, offset=1.0)]
    with create_geotiff(target, grid, specs, np.float32, float("nan"), settings) as w:
        for win in iter_windows(40, 30, 16):
            w.write(win, data[:, win.row : win.row + win.height, win.col : win.col + win.width])
        assert not target.exists()  # only a partial name exists until the block ends
    ds = open_raster(target)
    assert raster_grid(target).matches(grid)
    np.testing.assert_array_equal(ds.ReadAsArray(), data)
    band = ds.GetRasterBand(1)
    assert band.GetDescription() == "A" and band.GetMetadataItem("K") == "v"
    assert np.isnan(band.GetNoDataValue())
    assert band.GetBlockSize() == [16, 16]
    assert ds.GetMetadataItem("COMPRESSION", "IMAGE_STRUCTURE") == "DEFLATE"
    assert ds.GetRasterBand(2).GetScale() == 2.0 and ds.GetRasterBand(2).GetOffset() == 1.0
    assert list(tmp_path.iterdir()) == [target]


@pytest.mark.parametrize("overviews", ["products", "all"])
def test_products_and_intermediates_are_compressed_each_as_set(tmp_path, overviews):
    """Products for every GIS tool (output.compress), rasters only watergee reads back fast
    (output.intermediate_compress), as plain GeoTIFFs and as Cloud Optimized ones."""
    grid = _grid(40, 30)
    data = np.arange(1200, dtype=np.uint16).reshape(1, 30, 40)
    settings = OutputSettings(blocksize=16, overviews=overviews)
    for product, expected in ((True, "DEFLATE"), (False, "ZSTD")):
        target = tmp_path / f"{overviews}-{product}.tif"
        with create_geotiff(target, grid, [BandSpec("A")], np.uint16, 0, settings,
                            overviews="AVERAGE", product=product) as w:  # fmt: skip
            w.write(Window(0, 0, 40, 30), data)
        ds = open_raster(target)
        assert ds.GetMetadataItem("COMPRESSION", "IMAGE_STRUCTURE") == expected
        np.testing.assert_array_equal(ds.ReadAsArray(), data[0])
    swapped = OutputSettings(compress="ZSTD", intermediate_compress="NONE", overviews=overviews)
    target = tmp_path / f"{overviews}-swapped.tif"
    with create_geotiff(target, grid, [BandSpec("A")], np.uint16, 0, swapped,
                        overviews="AVERAGE", product=False) as w:  # fmt: skip
        w.write(Window(0, 0, 40, 30), data)
    assert open_raster(target).GetMetadataItem("COMPRESSION", "IMAGE_STRUCTURE") is None


def test_intermediates_are_written_at_the_fastest_zstd_level_and_products_at_gdals_own():
    from watergee.io.raster import cog_options, creation_options

    default = OutputSettings()
    assert "ZSTD_LEVEL=1" in creation_options(default, gdal.GDT_UInt16, product=False)
    assert "LEVEL=1" in cog_options(default, "AVERAGE", product=False)
    zstd = OutputSettings(compress="ZSTD")
    deflate = OutputSettings(intermediate_compress="DEFLATE")
    for options in (
        creation_options(zstd, gdal.GDT_UInt16),
        cog_options(zstd, "AVERAGE"),
        creation_options(deflate, gdal.GDT_UInt16, product=False),
        cog_options(deflate, "AVERAGE", product=False),
    ):
        assert not [o for o in options if "LEVEL" in o]


def test_bands_resampled_by_gdals_warper_and_stacks_are_intermediates(tmp_path):
    """The two writers of intermediates outside `create_geotiff`: a band on a grid that is no
    aligned coarsening (GDAL's warper) and the band stack, as plain and as Cloud Optimized
    GeoTIFFs."""
    from watergee.io.bandstack import stack_bands, warp_to_grid

    coarse = tmp_path / "coarse.tif"
    write_array(coarse, np.arange(1, 401, dtype=np.uint16).reshape(20, 20),
                utm_grid(32633, (399960.0, 5800020.0), 15, 20, 20))  # fmt: skip
    fine = utm_grid(32633, (399960.0, 5800020.0), 10, 30, 30)
    for overviews in ("products", "all"):
        settings = OutputSettings(blocksize=16, overviews=overviews)
        warped = tmp_path / f"warped-{overviews}.tif"
        warp_to_grid(coarse, warped, fine, "bilinear", 0, settings, BandSpec("B05"))
        stack = tmp_path / f"stack-{overviews}.tif"
        stack_bands([warped, warped], stack, [BandSpec("a"), BandSpec("b")], 0, settings)
        for path in (warped, stack):
            ds = open_raster(path)
            assert ds.GetMetadataItem("COMPRESSION", "IMAGE_STRUCTURE") == "ZSTD", path.name
            assert (ds.GetRasterBand(1).GetOverviewCount() > 0) == (overviews == "all")


def test_failed_write_leaves_nothing(tmp_path):
    target = tmp_path / "out.tif"
    with (
        pytest.raises(RuntimeError, match="boom"),
        create_geotiff(target, _grid(), [BandSpec("A")], np.uint8, 0, OutputSettings()) as w,
    ):
        w.write(Window(0, 0, 10, 8), np.ones((8, 10), np.uint8))
        raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []


KILLED_WRITER = """
import sys, time
import numpy as np
from pathlib import Path
from watergee.core.config import OutputSettings
from watergee.io.raster import BandSpec, Window, create_geotiff, utm_grid
grid = utm_grid(32633, (0.0, 0.0), 10.0, 256, 256)
with create_geotiff(Path(sys.argv[1]), grid, [BandSpec("A")], np.uint8, 0, OutputSettings()) as w:
    w.write(Window(0, 0, 256, 128), np.ones((128, 256), np.uint8))
    w.ds.FlushCache()
    print("writing", flush=True)
    time.sleep(60)
"""


def test_killed_write_leaves_no_final_file_and_rerun_cleans_up(tmp_path):
    target = tmp_path / "product.tif"
    proc = subprocess.Popen(
        [sys.executable, "-c", KILLED_WRITER, str(target)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout.readline().strip() == "writing"
        partials = list(tmp_path.glob(f"*{PARTIAL_MARK}*"))
        assert len(partials) == 1 and partials[0].stat().st_size > 0
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    assert not target.exists()
    # The next write of the same product removes the leftover and lands complete.
    with create_geotiff(target, _grid(), [BandSpec("A")], np.uint8, 0, OutputSettings()) as w:
        w.write(Window(0, 0, 10, 8), np.full((8, 10), 5, np.uint8))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["product.tif"]
    assert open_raster(target).ReadAsArray().min() == 5


def test_corrupt_and_truncated_rasters_name_the_file(tmp_path):
    garbage = tmp_path / "garbage.tif"
    garbage.write_bytes(b"II*\x00" + os.urandom(500))
    with pytest.raises(TileInputError, match=rf"^{garbage}: not a readable raster"):
        open_raster(garbage)
    with pytest.raises(TileInputError, match="file not found"):
        open_raster(tmp_path / "absent.tif")
    good = tmp_path / "b.jp2"
    write_array(
        good, np.random.default_rng(1).integers(1, 9000, (64, 64), np.uint16), _grid(64, 64)
    )
    truncated = tmp_path / "t.jp2"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(TileInputError, match=rf"^{truncated}: "):
        read_window(open_raster(truncated), Window(0, 0, 64, 64))


def test_grid_mismatch_names_both_files(tmp_path):
    a, b, c = tmp_path / "a.tif", tmp_path / "b.tif", tmp_path / "c.tif"
    write_array(a, np.ones((8, 10), np.uint8), _grid())
    write_array(b, np.ones((8, 10), np.uint8), _grid(origin=(500010.0, 5800000.0)))
    write_array(c, np.ones((8, 10), np.uint8), _grid(epsg=32632))
    assert require_same_grid([a, a]).matches(_grid())
    with pytest.raises(GridMismatchError, match=rf"^{b}: grid differs from {a} "):
        require_same_grid([a, b])
    with pytest.raises(GridMismatchError, match=rf"^{c}: CRS differs from {a} "):
        require_same_grid([a, c])


def test_unwritable_output_folder(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with (
        pytest.raises(OutputError, match=rf"{blocker}/sub: cannot create folder"),
        create_geotiff(
            blocker / "sub" / "o.tif", _grid(), [BandSpec("A")], np.uint8, 0, OutputSettings()
        ),
    ):
        pass


def test_block_rows_read_like_gdal_and_keep_few_rows(tmp_path):
    from watergee.io.bandstack import BlockRows

    rng = np.random.default_rng(3)
    data = rng.integers(0, 60000, (100, 70)).astype(np.uint16)
    path = tmp_path / "tiled.tif"
    ds = gdal.GetDriverByName("GTiff").Create(
        str(path), 70, 100, 1, gdal.GDT_UInt16, ["TILED=YES", "BLOCKXSIZE=16", "BLOCKYSIZE=16"]
    )
    ds.GetRasterBand(1).WriteArray(data)
    ds = None
    rows = BlockRows(open_raster(path))
    assert rows.block_height == 16
    windows = [(c, r, min(20, 70 - c), min(20, 100 - r)) for r in range(0, 100, 20)
               for c in range(0, 70, 20)]  # fmt: skip
    windows += [(0, 90, 70, 10), (3, 5, 60, 50), (0, 0, 1, 1)]  # backwards too
    for col, row, width, height in windows:
        window = rows.read(col, row, width, height)
        assert np.array_equal(window, data[row : row + height, col : col + width])
        assert len(rows._rows) == (row + height - 1) // 16 - row // 16 + 1


def _threads_in_task():
    from osgeo import gdal

    from watergee.core.config import Settings
    from watergee.io.raster import creation_options, gdal_environment

    settings = Settings.model_validate({"output": {"threads": 2}})
    with gdal_environment(settings):
        options = creation_options(settings.output, gdal.GDT_Byte)
        return gdal.GetThreadLocalConfigOption("GDAL_NUM_THREADS", None), options


def test_a_task_decodes_with_its_threads_and_encodes_in_one_before_gdal_3_7_3(client):
    """Before GDAL 3.7.3 the GeoTIFF encoder's shared pool can leave tiles unwritten, so the
    writing thread compresses alone there; decoding keeps the task's threads."""
    from osgeo import gdal

    encoder = "1" if int(gdal.VersionInfo()) < 3070300 else "2"
    config, options = client.submit(_threads_in_task, pure=False).result()
    assert config == "2" and f"NUM_THREADS={encoder}" in options


def test_geotiffs_decode_in_the_reading_thread_before_gdal_3_7_3(tmp_path, monkeypatch):
    """The GeoTIFF decoder shares the encoder's unsafe pool there: opened with NUM_THREADS=1,
    by `open_raster` and by the COG rewrite; JPEG2000 bands keep the task's decoder threads."""
    from watergee.io import raster

    tif, jp2 = tmp_path / "a.tif", tmp_path / "a.jp2"
    gdal.GetDriverByName("GTiff").Create(str(tif), 8, 8, 1).FlushCache()
    gdal.Translate(str(jp2), str(tif), format="JP2OpenJPEG")
    opened = {}
    open_ex = gdal.OpenEx

    def recording(path, *args, open_options=None, **kwargs):
        opened[Path(path).suffix] = open_options
        return open_ex(path, *args, open_options=open_options, **kwargs)

    monkeypatch.setattr(raster.gdal, "OpenEx", recording)
    single = ["NUM_THREADS=1"] if int(gdal.VersionInfo()) < 3070300 else []
    assert open_raster(tif).GetDriver().ShortName == "GTiff" and opened[".tif"] == single
    assert open_raster(jp2).GetDriver().ShortName == "JP2OpenJPEG" and opened[".jp2"] == []
    opened.clear()
    settings = OutputSettings(overviews="all", blocksize=16)
    with create_geotiff(tmp_path / "b.tif", utm_grid(32633, (0, 0), 10, 40, 40), [BandSpec("x")],
                        np.uint8, None, settings, overviews=True) as writer:  # fmt: skip
        writer.write(Window(0, 0, 40, 40), np.ones((40, 40), np.uint8))
    assert opened == {".tif": single}  # the scratch, read by the COG rewrite


@pytest.mark.parametrize(
    ("types", "expected"),
    [
        ((np.uint16, np.uint8), gdal.GDT_UInt16),
        ((np.int16, np.uint16), gdal.GDT_Int32),  # neither holds the other: both fit Int32
        ((np.float32, np.float64), gdal.GDT_Float64),
        ((np.uint16, np.float32), None),  # a float among DN: refused
    ],
)
def test_a_stack_takes_the_type_every_band_widens_into(tmp_path, types, expected):
    from watergee.io.bandstack import stack_type
    from watergee.io.raster import utm_grid, write_array

    paths = []
    for k, dtype in enumerate(types):
        paths.append(tmp_path / f"b{k}.tif")
        write_array(paths[-1], np.full((4, 4), 7, dtype), utm_grid(32633, (0.0, 0.0), 10, 4, 4))
    if expected is None:
        with pytest.raises(TileInputError, match=r"b1\.tif: Float32 band among UInt16 bands"):
            stack_type(paths)
    else:
        assert stack_type(paths) == expected


def test_a_geographic_raster_reaching_the_poles_is_aligned_not_refused(tmp_path):
    from watergee.io.raster import (
        Grid,
        on_grid,
        read_codes,
        spatial_reference,
        utm_grid,
        write_array,
    )

    world = tmp_path / "world.tif"
    wkt = spatial_reference("EPSG:4326").ExportToWkt()
    write_array(
        world,
        np.full((180, 360), 3, np.uint8),
        Grid(wkt, (-180.0, 1.0, 0.0, 90.0, 0.0, -1.0), 360, 180),
    )
    tile = utm_grid(32633, (300000.0, 5900000.0), 10, 20, 20)
    ds, warped = on_grid(world, tile)
    assert warped and (read_codes(ds, Window(0, 0, 20, 20)) == 3).all()


def _written(path, settings, product, bands=(BandSpec("A"),)):
    grid = _grid(300, 200)
    with create_geotiff(path, grid, list(bands), np.uint8, 255, settings,
                        overviews="NEAREST", product=product) as w:  # fmt: skip
        w.write(Window(0, 0, 300, 200), np.arange(60000, dtype=np.uint8).reshape(200, 300) % 3)
    ds = open_raster(path)
    return ds.GetRasterBand(1).GetOverviewCount(), ds.GetMetadata("IMAGE_STRUCTURE").get("LAYOUT")


@pytest.mark.parametrize(
    ("setting", "product", "built"),
    [("products", True, True), ("products", False, False), ("all", False, True),
     ("none", True, False)],
)  # fmt: skip
def test_overviews_go_to_products_by_default_and_to_intermediates_on_request(
    tmp_path, setting, product, built
):
    settings = OutputSettings(overviews=setting, blocksize=64)
    count, layout = _written(tmp_path / "a.tif", settings, product)
    assert (count > 0, layout == "COG") == (built, built)


def test_named_classes_get_a_category_sidecar_and_a_raster_without_names_loses_a_stale_one(
    tmp_path,
):
    from xml.etree import ElementTree

    path = tmp_path / "classes.tif"
    named = BandSpec("class", metadata={"CLASS_2": "land", "CLASS_0": "not water"})
    _written(path, OutputSettings(), True, [named])
    sidecar = tmp_path / "classes.tif.aux.xml"
    root = ElementTree.parse(sidecar).getroot()
    assert [c.text or "" for c in root.iter("Category")] == ["not water", "", "land"]
    assert [[f.text for f in row] for row in root.iter("Row")] == [
        ["0", "not water", "225", "225", "225"], ["2", "land", "235", "225", "200"]  # palette's
    ]  # fmt: skip
    _written(path, OutputSettings(), True)  # rewritten without class names
    assert not sidecar.exists()
