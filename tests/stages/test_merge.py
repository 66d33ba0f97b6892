"""merge: the owner rule on the mosaic's grid, across a seam and a UTM zone edge, the same
product whatever the order of the tile list."""

import numpy as np
import pytest
from osgeo import gdal, osr

from tests.stages.test_clip import class_tile
from watergee.core import layout
from watergee.core.config import load_settings
from watergee.core.tiles import Tile
from watergee.io.raster import grid_of, open_raster
from watergee.stages.merge import merge


def _utm(lon, lat, epsg):
    wgs, utm = osr.SpatialReference(), osr.SpatialReference()
    wgs.ImportFromEPSG(4326)
    utm.ImportFromEPSG(epsg)
    for srs in (wgs, utm):
        srs.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    return osr.CoordinateTransformation(wgs, utm).TransformPoint(lon, lat)[:2]


def _run(tmp_path, tiles, name, *sets):
    listing = tmp_path / f"{name}.txt"
    listing.write_text("".join(f"{t.source}\n" for t in tiles))
    settings = load_settings(None, [f"merge.name={name}", *sets])
    unit = Tile(name, listing)
    result = merge(unit, settings, tmp_path / "products")
    return layout.mosaic(tmp_path / "products", unit), result


def test_a_seam_in_one_zone_is_exact_and_the_order_never_matters(tmp_path):
    a = class_tile(tmp_path, "T33UUU", 32633, 398000, 5850000, 400, 300, value=1)
    b = class_tile(tmp_path, "T33UVU", 32633, 399960, 5850000, 400, 300, value=2)
    ab, _ = _run(tmp_path, [a, b], "ab", "merge.crs=EPSG:32633")
    ba, _ = _run(tmp_path, [b, a], "ba", "merge.crs=EPSG:32633")
    ds = open_raster(ab)
    data, grid = ds.ReadAsArray(), grid_of(ds)
    assert grid.bounds == (398000, 5847000, 403960, 5850000)
    x = grid.transform[0] + (np.arange(grid.width) + 0.5) * 10
    assert (data == np.where(x < 400000, 1, 2)[None, :]).all()  # no gap, no double count
    first, second = open_raster(ab), open_raster(ba)
    assert np.array_equal(first.ReadAsArray(), second.ReadAsArray())
    assert first.GetRasterBand(1).GetMetadataItem("CLASS_1") == "water"
    assert first.GetMetadataItem("LAYOUT", "IMAGE_STRUCTURE") == "COG"


def test_the_zone_edge_meets_without_gap_or_overlap_in_laea(tmp_path):
    """T32UQD and T33UTU both cover 12 E; in EPSG:3035 each pixel comes from the tile of the
    zone its centre lies in, and from the other one where that has no data."""
    x32, y32 = _utm(12.0, 52.5, 32632)
    x33, y33 = _utm(12.0, 52.5, 32633)
    west = round((x32 - 1500) / 10) * 10
    a = class_tile(
        tmp_path, "T32UQD", 32632, west, round((y32 + 1500) / 10) * 10, 300, 300, value=1
    )
    b = class_tile(tmp_path, "T33UTU", 32633, round((x33 - 1000) / 10) * 10,
                   round((y33 + 1200) / 10) * 10, 300, 300, value=2)  # fmt: skip
    path, result = _run(tmp_path, [a, b], "edge")
    ds = open_raster(path)
    data, grid = ds.ReadAsArray(), grid_of(ds)
    assert "LAEA" in grid.crs_name() or "3035" in grid.crs_name() or "Europe" in grid.crs_name()

    def alone(tile):
        warped = gdal.Warp("", str(tile.source), format="MEM", outputBounds=grid.bounds,
                           width=grid.width, height=grid.height, dstSRS=grid.crs_wkt,
                           resampleAlg="near")  # fmt: skip
        return warped.ReadAsArray() != 255

    va, vb = alone(a), alone(b)
    x0, dx, _, y0, _, dy = grid.transform
    gx, gy = np.meshgrid(
        x0 + (np.arange(grid.width) + 0.5) * dx, y0 + (np.arange(grid.height) + 0.5) * dy
    )
    laea, wgs = osr.SpatialReference(), osr.SpatialReference()
    laea.ImportFromWkt(grid.crs_wkt)
    wgs.ImportFromEPSG(4326)
    for srs in (laea, wgs):
        srs.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    lon = np.array(osr.CoordinateTransformation(laea, wgs).TransformPoints(
        np.column_stack([gx.ravel(), gy.ravel()])))[:, 0].reshape(gx.shape)  # fmt: skip
    west_side = lon < 12.0
    expected = np.where(
        west_side, np.where(va, 1, np.where(vb, 2, 255)), np.where(vb, 2, np.where(va, 1, 255))
    )
    assert (data == expected).all()
    both = va & vb
    assert (both & west_side).sum() > 1000 and (both & ~west_side).sum() > 1000
    assert result.info["tiles"] == 2
    swapped, _ = _run(tmp_path, [b, a], "edge2")
    assert np.array_equal(open_raster(swapped).ReadAsArray(), data)
    # 36 windows, filled by three threads, written in order
    windowed, _ = _run(tmp_path, [a, b], "edge3", "output.window=64", "output.threads=3")
    assert np.array_equal(open_raster(windowed).ReadAsArray(), data)


def test_a_window_that_fails_stops_the_mosaic_with_its_error(tmp_path, monkeypatch):
    from watergee.core.errors import TileInputError
    from watergee.io.raster import iter_windows
    from watergee.mosaic import Mosaicker, mosaic_windows, open_sources, target_grid

    a = class_tile(tmp_path, "T33UUU", 32633, 398000, 5850000, 400, 300, value=1)
    sources = open_sources([a.source], [a.id], "EPSG:32633")
    grid = target_grid(sources, "EPSG:32633", 10)
    windows = list(iter_windows(grid.width, grid.height, 32))
    fill = Mosaicker.window

    def failing(self, window, nodata, dtype):
        if window == windows[20]:
            raise TileInputError(f"{a.source}: warping failed (no such block)")
        return fill(self, window, nodata, dtype)

    monkeypatch.setattr(Mosaicker, "window", failing)
    done = []
    with pytest.raises(TileInputError, match=r"T33UUU\.tif: warping failed"):
        for window, data in mosaic_windows(sources, grid, windows, 255, np.uint8, 2):
            assert (data == 1).all()
            done.append(window)
    assert done == windows[:20]  # in order, up to the window that failed


def test_class_maps_of_different_pixel_types_are_refused(tmp_path):
    from watergee.core.errors import TileInputError
    from watergee.io.raster import utm_grid, write_array

    a = class_tile(tmp_path, "T33UUU", 32633, 398000, 5850000, 40, 30, value=1)
    wide = tmp_path / "T33UVU.tif"
    write_array(wide, np.full((30, 40), 300, np.uint16),
                utm_grid(32633, (399960, 5850000), 10, 40, 30), nodata=0)  # fmt: skip
    b = Tile("T33UVU", wide)
    with pytest.raises(
        TileInputError, match=r"T33UVU.tif: pixel type UInt16 differs from .*T33UUU.tif \(Byte\)"
    ):
        _run(tmp_path, [a, b], "mixed", "merge.crs=EPSG:32633")


def test_owners_from_the_lattice_equal_the_pixel_by_pixel_rule(tmp_path):
    """Around the corner where T32UPE, T32UQE and the 12 E meridian meet in EPSG:3035, with
    window sizes that leave partial cells, the lattice decision equals deciding every pixel."""
    from types import SimpleNamespace

    from watergee.io.raster import utm_grid
    from watergee.mosaic import Mosaicker

    keys = ["32PE", "32QE", "33TV", "33UV", "32PD", "32QD", "33TU", "33UU"]
    sources = [SimpleNamespace(key=k) for k in keys]
    seen = 0
    for width, height in ((1000, 1000), (417, 353), (33, 17)):
        east, north = _utm(11.95, 53.15, 3035)  # near the corner of four squares
        grid = utm_grid(3035, (east - 40 * width / 2, north + 40 * height / 2), 40, width, height)
        mosaicker = Mosaicker(sources, grid)
        x0, dx, _, y0, _, dy = grid.transform
        cols = x0 + (np.arange(width) + 0.5) * dx
        rows = y0 + (np.arange(height) + 0.5) * dy
        candidates = list(range(len(keys)))
        fast = mosaicker._owner_map(cols, rows, candidates)
        gx, gy = np.meshgrid(cols, rows)
        slow = mosaicker._owners(gx.ravel(), gy.ravel(), candidates).reshape(gx.shape)
        assert (fast == slow).all()
        seen = seen if width < 1000 else len(np.unique(slow))
    assert seen >= 3  # the large window holds at least three owners


def test_coordinates_inside_a_cell_are_the_projections_to_a_millimetre():
    """The owner map interpolates pixel coordinates between lattice points 16 px apart: on a
    10 m EPSG:3035 grid across the 12 E meridian, longitude and both zones' UTM coordinates
    agree with PROJ to well under a millimetre (and 1e-8 degrees)."""
    from types import SimpleNamespace

    from watergee.io.raster import utm_grid
    from watergee.mosaic import CELL, Mosaicker, _interpolated

    east, north = _utm(12.0, 52.0, 3035)
    grid = utm_grid(3035, (east - 5000, north + 5000), 10, 1000, 1000)
    mosaicker = Mosaicker([SimpleNamespace(key="32QD"), SimpleNamespace(key="33UU")], grid)
    x0, dx, _, y0, _, dy = grid.transform
    cols, rows = x0 + (np.arange(1000) + 0.5) * dx, y0 + (np.arange(1000) + 0.5) * dy
    lattice_r = np.minimum(np.arange(-(-1000 // CELL) + 1) * CELL, 999)
    gx, gy = np.meshgrid(cols[lattice_r], rows[lattice_r])
    zones = mosaicker._zones([0, 1])
    assert zones == [32, 33]
    lattice = mosaicker._coordinates(gx.ravel(), gy.ravel(), zones).reshape(*gx.shape, -1)
    r, c = np.random.default_rng(0).integers(0, 1000, (2, 20000))
    between = _interpolated(lattice, lattice_r, lattice_r, r, c)
    exact = mosaicker._coordinates(cols[c], rows[r], zones)
    assert np.abs(between[:, 0] - exact[:, 0]).max() < 1e-8  # degrees
    assert np.abs(between[:, 1:] - exact[:, 1:]).max() < 1e-3  # metres


def test_windows_around_a_corner_of_four_squares_follow_the_pixel_rule(tmp_path):
    """Four tiles over the point where four 100 km squares meet, in EPSG:3035: the merged
    mosaic, and windows of any size and place (lines cutting their corners, or crossing an
    edge between two border points), give every pixel the tile whose square holds its centre."""
    from types import SimpleNamespace

    from watergee import mgrs
    from watergee.io.raster import Window
    from watergee.mosaic import Mosaicker, open_sources

    _, _, east, north = mgrs.parse("T33UUU").bounds
    names = ["T33UUU", "T33UVU", "T33UUV", "T33UVV"]
    tiles = [class_tile(tmp_path, n, 32633, east - 1000, north + 1000, 200, 200, value=k + 1)
             for k, n in enumerate(names)]  # fmt: skip
    path, _ = _run(tmp_path, tiles, "corner", "output.window=67")
    ds = open_raster(path)
    data, grid = ds.ReadAsArray(), grid_of(ds)
    x0, dx, _, y0, _, dy = grid.transform
    gx, gy = np.meshgrid(
        x0 + (np.arange(grid.width) + 0.5) * dx, y0 + (np.arange(grid.height) + 0.5) * dy
    )
    rule = Mosaicker([SimpleNamespace(key=mgrs.parse(n).key) for n in names], grid)
    owners = rule._owners(gx.ravel(), gy.ravel(), [0, 1, 2, 3]).reshape(gx.shape)
    inside = data != 255
    assert inside.sum() > 30000 and (owners[inside] >= 0).all()
    assert np.array_equal(data[inside], owners[inside] + 1)
    assert {1, 2, 3, 4} <= set(np.unique(data[inside]).tolist())
    mosaicker = Mosaicker(open_sources([t.source for t in tiles], names, "EPSG:3035"), grid)
    rng = np.random.default_rng(3)
    for _ in range(200):
        w, h = rng.integers(3, 40, 2)
        col = rng.integers(0, grid.width - w)
        row = rng.integers(0, grid.height - h)
        part = mosaicker.window(Window(int(col), int(row), int(w), int(h)), 255, np.uint8)
        assert np.array_equal(part, data[row : row + h, col : col + w])
