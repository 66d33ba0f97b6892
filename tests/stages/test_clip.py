"""clip: MGRS owner rule (seams with no gap and no double count, the UTM zone edge),
footprints, mask raster, boundary."""

import json

import numpy as np
import pytest
from osgeo import gdal, ogr, osr

from watergee import mgrs
from watergee.core import layout
from watergee.core.config import load_settings
from watergee.core.errors import GridMismatchError, TileInputError
from watergee.core.tiles import Tile
from watergee.io.raster import grid_of, open_raster, utm_grid, write_array
from watergee.stages.clip import clip


def class_tile(folder, name, epsg, left, top, width, height, value=None, pixel=10.0):
    """A class map (uint8, nodata 255, a colour table) named as tile `name`; each pixel's class
    is `value`, or 1 + (column % 5) by default."""
    grid = utm_grid(epsg, (left, top), pixel, width, height)
    data = 1 + np.arange(width)[None, :].repeat(height, 0) % 5
    if value is not None:
        data[:] = value
    data = data.astype(np.uint8)
    path = folder / f"{name}.tif"
    write_array(path, data, grid, nodata=255)
    ds = gdal.Open(str(path), gdal.GA_Update)
    table = gdal.ColorTable()
    table.SetColorEntry(1, (0, 92, 230, 255))
    ds.GetRasterBand(1).SetRasterColorTable(table)
    ds.GetRasterBand(1).SetMetadata({"CLASS_1": "water"})
    ds = None
    return Tile(name, path)


def _read(path):
    ds = open_raster(path)
    return ds.ReadAsArray(), grid_of(ds)


def test_the_grid_squares_of_real_tile_names():
    assert mgrs.parse("T33UUU_20170216T102101").tile_bounds == (299960, 5790240, 409760, 5900040)
    assert mgrs.parse("T32UQD").bounds == (700000, 5800000, 800000, 5900000)
    assert mgrs.parse("T56HLH").epsg == 32756 and mgrs.parse("T56HLH").south == 6200000
    with pytest.raises(ValueError, match="not an MGRS tile name"):
        mgrs.parse("scene7")


def test_a_seam_has_no_gap_and_no_double_count(tmp_path):
    """T33UUU and its eastern neighbour T33UVU overlap by 9.8 km; clipped, each pixel of the
    overlap comes from exactly one of them (the square edge at x = 400 km)."""
    a = class_tile(tmp_path, "T33UUU", 32633, 398000, 5850000, 400, 300, value=1)
    b = class_tile(tmp_path, "T33UVU", 32633, 399960, 5850000, 400, 300, value=2)
    settings = load_settings(None, [])
    out = tmp_path / "out"
    ra, rb = clip(a, settings, out), clip(b, settings, out)
    data_a, grid_a = _read(layout.product(out, a, "clipped"))
    data_b, grid_b = _read(layout.product(out, b, "clipped"))
    assert grid_a.bounds == (398000, 5847000, 400000, 5850000)  # cropped to its square
    assert grid_b.bounds == (400000, 5847000, 403960, 5850000)
    assert (data_a == 1).all() and (data_b == 2).all()
    union = 403960 - 398000
    assert (data_a.shape[1] + data_b.shape[1]) * 10 == union  # every column exactly once
    assert ra.info["pixels"] + rb.info["pixels"] == union // 10 * 300
    # Class names and colours carried over; on its way to a mosaic: no overviews by default.
    ds = open_raster(layout.product(out, a, "clipped"))
    assert ds.GetRasterBand(1).GetOverviewCount() == 0
    assert ds.GetRasterBand(1).GetMetadataItem("CLASS_1") == "water"
    assert ds.GetRasterBand(1).GetColorTable().GetColorEntry(1)[:3] == (0, 92, 230)
    assert ds.GetRasterBand(1).GetNoDataValue() == 255


def test_the_zone_edge_goes_to_the_nearer_central_meridian(tmp_path):
    """T32UQD reaches across 12 E into zone 33: those pixels are cut away."""
    tile = class_tile(tmp_path, "T32UQD", 32632, 699960, 5840000, 1000, 200, pixel=10, value=3)
    out = tmp_path / "out"
    clip(tile, load_settings(None, []), out)
    data, grid = _read(layout.product(out, tile, "clipped"))
    x0, dx, _, y0, _, dy = grid.transform
    rows, cols = np.mgrid[0 : grid.height : 7, 0 : grid.width : 7]
    xs, ys = x0 + (cols + 0.5) * dx, y0 + (rows + 0.5) * dy
    utm, wgs = osr.SpatialReference(), osr.SpatialReference()
    utm.ImportFromEPSG(32632)
    wgs.ImportFromEPSG(4326)
    for srs in (utm, wgs):
        srs.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    lon = np.array(osr.CoordinateTransformation(utm, wgs).TransformPoints(
        np.column_stack([xs.ravel(), ys.ravel()])))[:, 0].reshape(xs.shape)  # fmt: skip
    kept = data[rows, cols] == 3
    assert (kept == (lon < 12.0)).all()
    assert kept.any() and (~kept).any()


def test_a_raster_in_another_crs_is_refused_for_the_mgrs_rule(tmp_path):
    tile = class_tile(tmp_path, "T32UQD", 32633, 300000, 5840000, 50, 50)
    with pytest.raises(GridMismatchError, match="T32UQD is in EPSG:32632"):
        clip(tile, load_settings(None, []), tmp_path / "out")


def _polygons(path, rings, srs_epsg=32633, names=None):
    srs = osr.SpatialReference()
    srs.ImportFromEPSG(srs_epsg)
    ds = ogr.GetDriverByName("GPKG").CreateDataSource(str(path))
    layer = ds.CreateLayer("polygons", srs, ogr.wkbPolygon)
    layer.CreateField(ogr.FieldDefn("Name", ogr.OFTString))
    for i, ring in enumerate(rings):
        feature = ogr.Feature(layer.GetLayerDefn())
        feature.SetField("Name", (names or [""] * len(rings))[i])
        wkt = "POLYGON ((" + ", ".join(f"{x} {y}" for x, y in ring) + "))"
        feature.SetGeometry(ogr.CreateGeometryFromWkt(wkt))
        layer.CreateFeature(feature)
    ds = None
    return path


def test_footprints_mask_and_boundary(tmp_path):
    tile = class_tile(tmp_path, "T33UUU", 32633, 300000, 5850000, 100, 100, value=4)
    box = [(300200, 5849000), (300500, 5849000), (300500, 5849800), (300200, 5849800),
           (300200, 5849000)]  # fmt: skip
    other = [(x + 100, y) for x, y in box]
    footprints = _polygons(tmp_path / "grid.gpkg", [other, box], names=["33UUV", "33UUU"])
    settings = load_settings(None, ["clip.rule=footprints", f"clip.footprints={footprints}"])
    result = clip(tile, settings, tmp_path / "fp")
    data, grid = _read(layout.product(tmp_path / "fp", tile, "clipped"))
    assert grid.bounds == (300200, 5849000, 300500, 5849800) and (data == 4).all()
    assert result.info["pixels"] == 30 * 80 and footprints in result.inputs

    mask = np.zeros((100, 100), np.uint8)
    mask[10:20, 30:35] = 1
    write_array(tmp_path / "mask.tif", mask, utm_grid(32633, (300000, 5850000), 10, 100, 100))
    settings = load_settings(None, ["clip.rule=mask", f"clip.mask={tmp_path / 'mask.tif'}"])
    assert clip(tile, settings, tmp_path / "m").info["pixels"] == 50

    # A boundary in another CRS (WGS 84), on top of the MGRS rule.
    aoi = _polygons(tmp_path / "aoi.gpkg", [_to_wgs84(box)], srs_epsg=4326)
    settings = load_settings(None, [f"clip.aoi={aoi}"])
    result = clip(tile, settings, tmp_path / "aoi")
    assert abs(result.info["pixels"] - 30 * 80) <= 4  # the ring's edges bend a little in UTM
    # Cut to the boundary alone, the raster is a product: a COG with overviews.
    settings = load_settings(None, [f"clip.aoi={aoi}", "clip.rule=none", "output.blocksize=16"])
    clip(tile, settings, tmp_path / "aoi-only")
    ds = open_raster(layout.product(tmp_path / "aoi-only", tile, "clipped"))
    assert ds.GetRasterBand(1).GetOverviewCount() > 0

    elsewhere = _polygons(tmp_path / "g2.gpkg", [box], names=["33XXX"])
    settings = load_settings(None, ["clip.rule=footprints", f"clip.footprints={elsewhere}"])
    with pytest.raises(TileInputError, match="no polygon whose Name is part of 'T33UUU'"):
        clip(tile, settings, tmp_path / "x")


def _to_wgs84(ring):
    utm, wgs = osr.SpatialReference(), osr.SpatialReference()
    utm.ImportFromEPSG(32633)
    wgs.ImportFromEPSG(4326)
    for srs in (utm, wgs):
        srs.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    return [p[:2] for p in osr.CoordinateTransformation(utm, wgs).TransformPoints(ring)]


def test_clip_runs_as_a_stage_and_resumes(tmp_path, client):
    from watergee.core.registry import STAGES
    from watergee.core.runner import run_stage

    a = class_tile(tmp_path, "T33UUU", 32633, 398000, 5850000, 400, 300)
    settings = load_settings(None, ["cluster.processes=false"])
    out = tmp_path / "out"
    assert [o.status for o in run_stage(STAGES["clip"], [a], settings, out, client).outcomes] == [
        "done"
    ]
    assert [o.status for o in run_stage(STAGES["clip"], [a], settings, out, client).outcomes] == [
        "skipped"
    ]
    record = json.loads(layout.record(out, a, "clip").read_text())
    assert record["outputs"][0]["path"] == "T33UUU/T33UUU_clipped.tif"


def test_the_zone_edge_search_equals_a_pixel_by_pixel_test():
    """The run of columns found by bisection on each row is the set of pixels whose own
    longitude lies in the zone, across a window the 12 E meridian crosses at a slant."""
    from watergee.io.raster import Window
    from watergee.ownership import SquareRegion, centres

    square = mgrs.parse("T32UQD")  # 700-800 km east in zone 32: the 12 E meridian crosses it
    left, _, _, top = square.tile_bounds
    grid = utm_grid(square.epsg, (left, top), 40, 2745, 2745)
    window = Window(0, 0, 400, 2745)
    found = SquareRegion(square, "test").inside(grid, window)
    xs, ys = centres(grid, window)
    gx, gy = np.meshgrid(xs, ys)
    lon = np.array(SquareRegion(square, "test")._longitudes(gx.ravel(), gy.ravel()))
    west, south, east, north = square.bounds
    expected = (mgrs.zone_of(lon) == 32).reshape(gx.shape)
    expected &= (gx >= west) & (gx < east) & (gy >= south) & (gy < north)
    assert 0 < expected.sum() < expected.size  # the edge is inside the window
    assert (found == expected).all()
