"""Superpixels on a synthetic tile with known regions, across block seams."""

import numpy as np
import pytest
from osgeo import gdal, ogr

from tests.conftest import ORIGIN
from watergee.core import layout
from watergee.core.config import load_settings
from watergee.core.errors import TileInputError
from watergee.core.tiles import Tile
from watergee.io.raster import Window, open_raster, raster_grid, utm_grid, write_array
from watergee.segmentation import compact_ids, fill_gaps, grow
from watergee.stages.superpixel import superpixel

SIZE = 200


def _regions() -> np.ndarray:
    """Four land-cover regions with curved borders: 0..3 per pixel."""
    rows, cols = np.mgrid[0:SIZE, 0:SIZE]
    region = (rows > 90 + 20 * np.sin(cols / 25)).astype(int)
    region += 2 * ((rows - 60) ** 2 + (cols - 140) ** 2 < 45**2)
    return np.minimum(region, 3)


def _tile(tmp_path, nodata_corner=True):
    region = _regions()
    colours = np.array([[900, 1400, 600], [300, 500, 400], [2500, 2200, 2000], [100, 200, 900]])
    rng = np.random.default_rng(0)
    rgb = colours[region].astype(float) * (1 + 0.03 * rng.standard_normal((SIZE, SIZE, 1)))
    stack = np.moveaxis(np.rint(rgb), -1, 0).astype(np.uint16)
    if nodata_corner:
        stack[:, :30, :30] = 0
    path = tmp_path / "scene.tif"
    write_array(path, stack, utm_grid(32633, ORIGIN, 10, SIZE, SIZE), nodata=0)
    ds = gdal.Open(str(path), gdal.GA_Update)
    for i, name in enumerate(("B04", "B03", "B02"), start=1):
        ds.GetRasterBand(i).SetDescription(name)
    ds = None
    return Tile("scene", path), region, stack


def test_segments_cover_every_valid_pixel_follow_regions_and_cross_block_seams(tmp_path):
    tile, region, stack = _tile(tmp_path)
    out = tmp_path / "work"
    settings = load_settings(None, ["superpixel.block=64", "superpixel.region_size=10"])
    result = superpixel(tile, settings, out)
    seg = open_raster(result.outputs[0]).ReadAsArray()
    valid = stack[0] > 0
    assert (seg[~valid] == 0).all() and (seg[valid] > 0).all()
    count = int(seg.max())
    assert set(np.unique(seg[valid])) == set(range(1, count + 1))  # ids 1..n, no holes
    assert 0.5 < valid.sum() / count / 100 < 2  # about region_size^2 pixels each
    # Segments do not mix land-cover regions (a few border pixels at most).
    impure = 0
    for sid in range(1, count + 1):
        members = region[seg == sid]
        impure += members.size - np.bincount(members).max()
    assert impure / valid.sum() < 0.01
    # Block edges at 64 and 128 are not segment borders: many segments straddle them.
    straddling = sum(
        len(np.intersect1d(seg[:, edge - 1][valid[:, edge - 1]], seg[:, edge][valid[:, edge]]))
        for edge in (64, 128)
    )
    assert straddling > 10
    assert raster_grid(result.outputs[0]).matches(raster_grid(tile.source))


def test_centroid_layer_matches_the_segment_raster(tmp_path):
    tile, _, stack = _tile(tmp_path)
    out = tmp_path / "work"
    superpixel(tile, load_settings(None, ["superpixel.block=64"]), out)
    seg = open_raster(layout.segments(out, tile)).ReadAsArray()
    ds = ogr.Open(str(layout.centroids(out, tile)))
    layer = ds.GetLayerByName("centroids")
    features = list(layer)
    assert len(features) == seg.max()
    rows, cols = np.indices(seg.shape)
    x0, dx, _, y0, _, dy = raster_grid(tile.source).transform
    for feature in features[::7]:
        sid = feature.GetField("segment_id")
        inside = seg == sid
        assert feature.GetField("pixels") == inside.sum()
        assert feature.GetField("row") == pytest.approx(rows[inside].mean())
        assert feature.GetField("col") == pytest.approx(cols[inside].mean())
        assert feature.GetField("mean_b03") == pytest.approx(stack[1][inside].mean())
        point = feature.GetGeometryRef()
        assert point.GetX() == pytest.approx(x0 + (cols[inside].mean() + 0.5) * dx)
        assert point.GetY() == pytest.approx(y0 + (rows[inside].mean() + 0.5) * dy)
        # The seed pixel lies in the segment, nearest its centroid.
        r, c = feature.GetField("seed_row"), feature.GetField("seed_col")
        assert seg[r, c] == sid
        dist = (rows[inside] - rows[inside].mean()) ** 2 + (cols[inside] - cols[inside].mean()) ** 2
        assert (r - rows[inside].mean()) ** 2 + (c - cols[inside].mean()) ** 2 == pytest.approx(
            dist.min(), abs=0.07
        )
    assert sum(f.GetField("pixels") for f in features) == (stack[0] > 0).sum()


def test_block_size_does_not_change_the_segmentation_much(tmp_path):
    tile, _, _ = _tile(tmp_path, nodata_corner=False)
    one = superpixel(tile, load_settings(None, ["superpixel.block=4096"]), tmp_path / "a")
    many = superpixel(tile, load_settings(None, ["superpixel.block=64"]), tmp_path / "b")
    a = open_raster(one.outputs[0]).ReadAsArray()
    b = open_raster(many.outputs[0]).ReadAsArray()
    assert abs(int(a.max()) - int(b.max())) / a.max() < 0.15


def test_gap_fill_and_compaction():
    labels = np.array([[1, 1, 0, 4], [1, 0, 0, 4], [0, 0, 0, 4]], np.uint32)
    valid = np.ones_like(labels, bool)
    valid[2, 0] = False
    whole = Window(0, 0, 4, 3)
    assert fill_gaps(labels, valid, whole, whole, 5) == 5
    assert labels[2, 0] == 0 and (labels[valid] > 0).all()
    assert labels[1, 2] == 4 and labels[1, 1] == 1  # nearest assigned pixel wins
    assert compact_ids(labels, 5) == 2
    assert set(np.unique(labels)) == {0, 1, 2}
    isolated = np.zeros((3, 3), np.uint32)
    assert (
        fill_gaps(isolated, np.ones((3, 3), bool), Window(0, 0, 3, 3), Window(0, 0, 3, 3), 9) == 10
    )
    assert (isolated == 9).all()
    assert grow(Window(10, 10, 5, 5), 3, 16, 40) == Window(7, 7, 9, 11)


def test_band_selection_errors_name_the_file(tmp_path):
    tile, _, _ = _tile(tmp_path)
    with pytest.raises(TileInputError, match=r"scene\.tif: no band described as B08"):
        superpixel(tile, load_settings(None, ["superpixel.bands=[B08, B03, B02]"]), tmp_path / "w")
    with pytest.raises(TileInputError, match=r"band 5 requested, raster has 3"):
        superpixel(tile, load_settings(None, ["superpixel.bands=[5, 2, 1]"]), tmp_path / "w")


def test_all_nodata_tile_gives_an_empty_segmentation(tmp_path):
    path = tmp_path / "empty.tif"
    write_array(
        path, np.zeros((3, 50, 50), np.uint16), utm_grid(32633, ORIGIN, 10, 50, 50), nodata=0
    )
    result = superpixel(
        Tile("empty", path), load_settings(None, ["superpixel.bands=[1, 2, 3]"]), tmp_path / "w"
    )
    assert result.info["segments"] == 0
    assert (open_raster(result.outputs[0]).ReadAsArray() == 0).all()
