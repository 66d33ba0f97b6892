"""Sampling on synthetic tiles with known class regions: exact centres, no replacement."""

import json

import numpy as np
import pytest
from osgeo import gdal, ogr, osr

from tests.conftest import ORIGIN
from watergee.core import layout
from watergee.core.config import load_settings
from watergee.core.errors import GridMismatchError, TileInputError
from watergee.core.runner import completed
from watergee.core.tiles import Tile
from watergee.io.raster import open_raster, utm_grid, write_array
from watergee.sampleset import read_shard, validate, write_manifest
from watergee.sampling import held_out_blocks
from watergee.stages.sample import sample
from watergee.stages.superpixel import superpixel

H, W = 90, 120


def _scene(tmp_path, hole=True):
    """A 4-band stack whose values encode band and position, and a label raster with three
    codes in known regions (10: left, 20: right, 30: a block in the middle, 0: a stripe)."""
    rows, cols = np.mgrid[0:H, 0:W]
    stack = np.stack([(b + 1) * 10000 + rows * W + cols for b in range(4)]).astype(np.uint32)
    if hole:
        stack[:, 40:44, 10:14] = 0  # no data
    grid = utm_grid(32633, ORIGIN, 10, W, H)
    stack_path = tmp_path / "T33XYZ_stack.tif"
    write_array(stack_path, stack, grid, nodata=0)
    ds = gdal.Open(str(stack_path), gdal.GA_Update)
    for i, name in enumerate(("B03", "B04", "B08", "B11"), start=1):
        ds.GetRasterBand(i).SetDescription(name)
    ds = None
    labels = np.where(cols < 60, 10, 20).astype(np.uint8)
    labels[30:50, 50:70] = 30
    labels[:, 100:104] = 0
    label_path = tmp_path / "labels.tif"
    write_array(label_path, labels, grid)
    return Tile("T33XYZ_stack", stack_path), stack, labels, label_path


def _settings(label_path, *more):
    return load_settings(
        None,
        [
            f"sample.labels={label_path}",
            "sample.classes={10: 1, 20: 2, 30: 3}",
            "sample.quota=50",
            "sample.validation=0.25",
            *more,
        ],
    )


def _load(out, tile):
    summary = json.loads(layout.sample_summary(out, tile).read_text())
    parts = [
        read_shard(layout.sample_dir(out, tile) / n)
        for n in summary["shards"]["train"] + summary["shards"]["validation"]
    ]
    merged = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    return summary, merged


@pytest.mark.parametrize("patch", [5, 4, 12])
def test_patch_centre_carries_the_sampled_label_without_offset(tmp_path, patch):
    tile, stack, labels, label_path = _scene(tmp_path)
    out = tmp_path / "samples"
    sample(tile, _settings(label_path, f"sample.patch={patch}"), out)
    _summary, s = _load(out, tile)
    assert s["X"].shape[1:] == (patch, patch, 7)  # B03 B04 B08 B11, then NDWI MNDWI NDVI
    half = patch // 2
    for i in range(len(s["y"])):
        r, c = int(s["row"][i]), int(s["col"][i])
        assert s["X"][i, half, half, 0] == 10000 + r * W + c  # the sample pixel at patch // 2
        expected = stack[:, r - half : r - half + patch, c - half : c - half + patch]
        np.testing.assert_array_equal(s["X"][i, ..., :4], np.moveaxis(expected, 0, -1))
        assert labels[r, c] == s["code"][i]
        assert {10: 1, 20: 2, 30: 3}[int(s["code"][i])] == s["y"][i]
    assert not np.isnan(s["X"]).any()


def test_quota_without_replacement_and_counts(tmp_path):
    tile, _, _, label_path = _scene(tmp_path)
    out = tmp_path / "samples"
    sample(
        tile, _settings(label_path, "sample.quota={1: 50, 2: 10000, 3: 30}", "sample.patch=3"), out
    )
    summary, s = _load(out, tile)
    assert len({(r, c) for r, c in zip(s["row"], s["col"], strict=True)}) == len(s["y"])
    counts = np.bincount(s["y"], minlength=4)
    assert counts[1] == 50 and counts[3] == 30
    # Class 2 has fewer usable pixels than its quota: all of them are taken, once each.
    assert counts[2] == summary["candidates"]["2"] - summary["dropped"]["patch"]["2"] < 10000
    assert sum(summary["train"].values()) + sum(summary["validation"].values()) == len(s["y"])
    assert 0 < sum(summary["validation"].values()) < len(s["y"])


def test_edges_and_nodata_are_dropped_and_counted(tmp_path):
    tile, _, labels, label_path = _scene(tmp_path)
    out = tmp_path / "samples"
    sample(tile, _settings(label_path, "sample.quota=100000", "sample.patch=5"), out)
    summary, s = _load(out, tile)
    rows, cols = s["row"], s["col"]
    assert rows.min() >= 2 and cols.min() >= 2 and rows.max() <= H - 3 and cols.max() <= W - 3
    near_hole = (rows >= 38) & (rows <= 45) & (cols >= 8) & (cols <= 15)
    assert not near_hole.any()
    valid = np.zeros((H, W), bool)
    valid[2 : H - 2, 2 : W - 2] = True
    valid[38:46, 8:16] = False
    labelled = labels > 0
    assert len(s["y"]) == (valid & labelled).sum()
    assert sum(summary["dropped"]["patch"].values()) == (labelled & ~valid).sum()


def test_same_seed_same_samples_other_seed_other_samples(tmp_path):
    tile, _, _, label_path = _scene(tmp_path)
    a = sample(tile, _settings(label_path), tmp_path / "a")
    b = sample(tile, _settings(label_path), tmp_path / "b")
    c = sample(tile, _settings(label_path, "sample.seed=1"), tmp_path / "c")
    sa, sb, sc = (_load(tmp_path / n, tile)[1] for n in "abc")
    for key in sa:
        np.testing.assert_array_equal(sa[key], sb[key])
    assert not np.array_equal(sa["row"], sc["row"])
    assert a.info == b.info == c.info


@pytest.mark.parametrize("more", [[], ["sample.min_distance=3"]], ids=["plain", "spaced"])
def test_draws_do_not_depend_on_the_window_size(tmp_path, more):
    """output.window is a memory knob: the same samples whatever the windows."""
    tile, _, _, label_path = _scene(tmp_path)
    sample(tile, _settings(label_path, "output.window=2048", *more), tmp_path / "whole")
    sample(tile, _settings(label_path, "output.window=64", *more), tmp_path / "windows")
    whole, windows = (_load(tmp_path / n, tile)[1] for n in ("whole", "windows"))
    assert len(whole["y"]) == (150 if not more else 129)
    for key in whole:
        np.testing.assert_array_equal(whole[key], windows[key])


def test_unmapped_code_fails_with_the_label_file_or_is_ignored(tmp_path):
    tile, _, _, label_path = _scene(tmp_path)
    settings = load_settings(None, [f"sample.labels={label_path}", "sample.classes={10: 1, 20: 2}"])
    with pytest.raises(
        TileInputError, match=rf"{label_path}: label code 30 is not in the class table"
    ):
        sample(tile, settings, tmp_path / "s")
    ignoring = load_settings(
        None,
        [f"sample.labels={label_path}", "sample.classes={10: 1, 20: 2}", "sample.unmapped=ignore"],
    )
    sample(tile, ignoring, tmp_path / "s")
    _, s = _load(tmp_path / "s", tile)
    assert set(np.unique(s["code"])) == {10, 20}


def test_labels_on_a_coarser_grid_are_warped_with_nearest(tmp_path):
    tile, _, _, _ = _scene(tmp_path)
    coarse = np.zeros((H // 2, W // 2), np.uint8)
    coarse[:, : W // 4] = 10
    coarse[:, W // 4 :] = 20
    coarse[10:20, 10:20] = 30
    path = tmp_path / "coarse.tif"
    write_array(path, coarse, utm_grid(32633, ORIGIN, 20, W // 2, H // 2))
    out = tmp_path / "s"
    sample(tile, _settings(path, "sample.quota=100000", "sample.patch=1"), out)
    summary, s = _load(out, tile)
    assert summary["labels"]["warped"] is True
    np.testing.assert_array_equal(s["code"], coarse[s["row"] // 2, s["col"] // 2])


def test_labels_elsewhere_are_refused(tmp_path):
    tile, _, _, _ = _scene(tmp_path)
    path = tmp_path / "far.tif"
    write_array(path, np.ones((10, 10), np.uint8), utm_grid(32633, (0.0, 0.0), 10, 10, 10))
    with pytest.raises(GridMismatchError, match=r"far\.tif: does not overlap the tile"):
        sample(tile, _settings(path), tmp_path / "s")


def test_label_folder_is_matched_by_tile_id(tmp_path):
    tile, _, _, label_path = _scene(tmp_path)
    folder = tmp_path / "labels"
    folder.mkdir()
    label_path.rename(folder / f"{tile.id}_labels.tif")
    write_array(
        folder / "T99ABC_labels.tif", np.ones((4, 4), np.uint8), utm_grid(32633, ORIGIN, 10, 4, 4)
    )
    sample(tile, _settings(folder), tmp_path / "s")
    assert json.loads(layout.sample_summary(tmp_path / "s", tile).read_text())["labels"][
        "path"
    ].endswith(f"{tile.id}_labels.tif")
    listing = tmp_path / "labels.txt"
    listing.write_text(f"labels/T99ABC_labels.tif\nlabels/{tile.id}_labels.tif\n")
    sample(tile, _settings(listing), tmp_path / "u")
    used = json.loads(layout.sample_summary(tmp_path / "u", tile).read_text())["labels"]["path"]
    assert used == str(tmp_path / "labels" / f"{tile.id}_labels.tif")
    with pytest.raises(TileInputError, match="no label raster named after tile"):
        sample(Tile("T11AAA_x", tile.source), _settings(folder), tmp_path / "t")


def test_min_distance_between_any_two_samples(tmp_path):
    tile, _, _, label_path = _scene(tmp_path)
    out = tmp_path / "s"
    sample(
        tile,
        _settings(label_path, "sample.min_distance=6", "sample.quota=400", "sample.patch=1"),
        out,
    )
    summary, s = _load(out, tile)
    r, c = s["row"].astype(int), s["col"].astype(int)
    gap = np.maximum(np.abs(r[:, None] - r[None]), np.abs(c[:, None] - c[None]))
    np.fill_diagonal(gap, 99)
    assert gap.min() >= 6
    assert len(r) > 100 and sum(summary["dropped"]["distance"].values()) > 0


def test_water_guard_drops_water_like_background(tmp_path):
    tile, stack, _, _ = _scene(tmp_path, hole=False)
    # Bands B03 (green) and B11 (SWIR1): make an unmapped "lake" in the land class 10.
    green, swir = np.full((H, W), 800, np.uint16), np.full((H, W), 2000, np.uint16)
    green[10:30, 10:30], swir[10:30, 10:30] = 1000, 100
    data = np.stack([green, stack[1], stack[2], swir]).astype(np.uint16)
    write_array(tile.source, data, utm_grid(32633, ORIGIN, 10, W, H), nodata=0)
    ds = gdal.Open(str(tile.source), gdal.GA_Update)
    for i, name in enumerate(("B03", "B04", "B08", "B11"), start=1):
        ds.GetRasterBand(i).SetDescription(name)
    ds = None
    labels = np.full((H, W), 10, np.uint8)
    labels[60:80, 60:80] = 5  # mapped water
    path = tmp_path / "osm.tif"
    write_array(path, labels, utm_grid(32633, ORIGIN, 10, W, H))
    settings = load_settings(
        None,
        [
            f"sample.labels={path}",
            "sample.classes={10: 1, 5: 12}",
            "sample.quota=100000",
            "sample.patch=1",
            "sample.water_class=12",
            "sample.water_separability=null",  # the ramp of NIR values would be split
        ],
    )
    out = tmp_path / "s"
    sample(tile, settings, out)
    summary, s = _load(out, tile)
    land = s["y"] == 1
    lake = (s["row"] >= 10) & (s["row"] < 30) & (s["col"] >= 10) & (s["col"] < 30)
    assert not (land & lake).any()
    assert summary["dropped"]["water_guard"] == {"1": 400}
    assert (s["y"] == 12).sum() == 400  # mapped water is never guarded


def test_superpixel_mode_takes_one_seed_pixel_per_segment(tmp_path):
    tile, _, labels, label_path = _scene(tmp_path, hole=False)
    settings = _settings(
        label_path,
        "sample.mode=superpixel",
        "sample.quota=100000",
        "sample.patch=1",
        "superpixel.bands=[1, 2, 3]",
        "superpixel.region_size=8",
    )
    superpixel(tile, settings, tmp_path / "s")
    sample(tile, settings, tmp_path / "s")
    _, s = _load(tmp_path / "s", tile)
    segments = open_raster(layout.segments(tmp_path / "s", tile)).ReadAsArray()
    ids = segments[s["row"], s["col"]]
    assert len(np.unique(ids)) == len(ids)  # one sample per segment at most
    vector = ogr.Open(str(layout.centroids(tmp_path / "s", tile)))
    seeds = {(f.GetField("seed_row"), f.GetField("seed_col")) for f in vector.GetLayer(0)}
    assert {(int(r), int(c)) for r, c in zip(s["row"], s["col"], strict=True)} <= seeds
    # Every seed on a labelled pixel is a sample (patch 1, no no-data, quota unbounded).
    assert len(ids) == sum(1 for r, c in seeds if labels[r, c] != 0)


def test_points_mode_reads_validation_points_with_valvalue(tmp_path):
    tile, _, _, _ = _scene(tmp_path)
    path = tmp_path / "val.geojson"
    target = osr.SpatialReference()
    target.ImportFromEPSG(4326)
    target.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    source = osr.SpatialReference()
    source.ImportFromEPSG(32633)
    to_wgs84 = osr.CoordinateTransformation(source, target)
    wanted = [(20, 30, 1), (60, 90, 2), (70, 20, 1)]  # row, col, class
    features = []
    for r, c, v in wanted:
        lon, lat, _ = to_wgs84.TransformPoint(
            ORIGIN[0] + (c + 0.5) * 10, ORIGIN[1] - (r + 0.5) * 10
        )
        features.append(
            {
                "type": "Feature",
                "properties": {"ValValue": v},
                "geometry": {"type": "Point", "coordinates": [lon, lat]},
            }
        )
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}))
    settings = load_settings(
        None,
        ["sample.mode=points", f"sample.points={path}", "sample.patch=3", "sample.validation=0"],
    )
    sample(tile, settings, tmp_path / "s")
    _, s = _load(tmp_path / "s", tile)
    got = sorted(zip(s["row"].tolist(), s["col"].tolist(), s["y"].tolist(), strict=True))
    assert got == sorted(wanted)


def test_manifest_and_validate(tmp_path):
    tile, _, _, label_path = _scene(tmp_path)
    out = tmp_path / "s"
    settings = _settings(
        label_path, "sample.class_names={1: left, 2: right, 3: middle}", "sample.required=[1, 3]"
    )
    sample(tile, settings, out)
    manifest = json.loads(write_manifest(completed([tile]), settings, out)[0].read_text())
    assert manifest["bands"] == ["B03", "B04", "B08", "B11", "NDWI", "MNDWI", "NDVI"]
    assert manifest["patch"] == 7 and "patch // 2" in manifest["centre"]
    total = sum(len(read_shard(out / n)["y"]) for n in manifest["shards"]["train"])
    assert total == sum(manifest["totals"]["train"].values())
    lines, problems = validate(out)
    assert problems == [] and any("middle" in line for line in lines)
    lines, problems = validate(out, [7])
    assert problems == [f"{out}/manifest.json: required class 7 has no samples"]


def test_the_water_class_is_named_water_unless_named_otherwise(tmp_path):
    tile, _, _, label_path = _scene(tmp_path)
    out = tmp_path / "s"
    sample(tile, _settings(label_path), out)
    for names, expected in (
        ("{}", {"3": "water"}),
        ("{3: lake, 1: left}", {"3": "lake", "1": "left"}),
        ("{1: Water}", {"1": "Water"}),  # never two classes named water
    ):
        settings = _settings(label_path, "sample.water_class=3", f"sample.class_names={names}")
        manifest = json.loads(write_manifest(completed([tile]), settings, out)[0].read_text())
        assert manifest["class_names"] == expected


def test_rerun_with_other_settings_leaves_no_stale_shards(tmp_path):
    tile, _, _, label_path = _scene(tmp_path)
    out = tmp_path / "s"
    sample(tile, _settings(label_path, "sample.shard_size=10"), out)
    assert len(list(layout.sample_dir(out, tile).glob("train-*.npz"))) > 5
    sample(tile, _settings(label_path, "sample.shard_size=1000"), out)
    assert sorted(p.name for p in layout.sample_dir(out, tile).glob("*.npz")) == [
        "train-00000.npz",
        "val-00000.npz",
    ]


def test_index_channels_equal_the_indices_stage(tmp_path):
    from watergee.stages.indices import indices

    tile, _, _, label_path = _scene(tmp_path)
    out = tmp_path / "s"
    settings = _settings(
        label_path,
        "sample.indices=[MNDWI, LINE]",
        "sample.patch=4",
        "indices.indices=[MNDWI, LINE]",
    )
    indices(tile, settings, out)
    reference = open_raster(layout.indices(out, tile)).ReadAsArray()
    sample(tile, settings, out)
    summary, s = _load(out, tile)
    assert summary["bands"] == ["B03", "B04", "B08", "B11", "MNDWI", "LINE"]
    assert s["X"].shape[-1] == 6
    for i in range(len(s["y"])):
        r0, c0 = int(s["row"][i]) - 2, int(s["col"][i]) - 2
        expected = reference[:, r0 : r0 + 4, c0 : c0 + 4]
        np.testing.assert_allclose(np.moveaxis(s["X"][i, ..., 4:], -1, 0), expected, atol=1e-6)
    assert not np.isnan(s["X"]).any()


@pytest.mark.parametrize("size", [1, 2, 5, 7, 12])
def test_patch_fits_equals_square_erosion(size):
    from scipy import ndimage

    from watergee.sampling import patch_fits

    rng = np.random.default_rng(size)
    for share in (0.0, 0.01, 0.2):
        valid = rng.random((37, 29)) >= share
        square = ndimage.binary_erosion(valid, np.ones((size, size), bool), border_value=0)
        assert np.array_equal(patch_fits(valid, size), square)


def test_every_file_read_is_recorded_so_a_change_redoes_the_tile(tmp_path):
    """Label raster, points file and segment centroids are inputs of the tile's record."""
    from watergee.core.registry import STAGES
    from watergee.core.runner import execute_tile

    tile, _, _, label_path = _scene(tmp_path, hole=False)
    points = tmp_path / "points.gpkg"
    srs = osr.SpatialReference()
    srs.ImportFromEPSG(32633)
    ds = ogr.GetDriverByName("GPKG").CreateDataSource(str(points))
    layer = ds.CreateLayer("points", srs, ogr.wkbPoint)
    layer.CreateField(ogr.FieldDefn("ValValue", ogr.OFTInteger))
    feature = ogr.Feature(layer.GetLayerDefn())
    feature.SetField("ValValue", 10)
    feature.SetGeometry(ogr.CreateGeometryFromWkt(f"POINT ({ORIGIN[0] + 305} {ORIGIN[1] - 405})"))
    layer.CreateFeature(feature)
    ds = layer = feature = None
    spx = ["superpixel.bands=[1, 2, 3]", "superpixel.region_size=8"]
    out = tmp_path / "s"
    for mode, changed in (("points", points), ("superpixel", None), ("pixel", label_path)):
        settings = _settings(label_path, f"sample.mode={mode}", f"sample.points={points}", *spx)
        if mode == "superpixel":
            superpixel(tile, settings, out)
            changed = layout.centroids(out, tile)

        def status(settings=settings):
            return execute_tile(tile, STAGES["sample"], settings, out, False).status

        assert status() == "done", mode
        assert status() == "skipped", mode
        changed.write_bytes(changed.read_bytes())  # same content, new modification time
        assert status() == "done", (mode, changed.name)


def test_validation_holds_out_whole_blocks_per_class():
    rows, cols = (a.ravel() for a in np.mgrid[0:64, 0:64])
    classes = np.where(cols < 40, 1, 2)  # class 2: 3 x 8 whole blocks and 8 blocks' right parts
    held = held_out_blocks(0, "T1", rows, cols, classes, 0.25, 8)
    for cls in (1, 2):
        mine = classes == cls
        blocks = (rows[mine] // 8) * 8 + cols[mine] // 8
        for b in np.unique(blocks):
            assert len(set(held[mine][blocks == b])) == 1  # a block's class is held out whole
        assert 0 < held[mine].mean() < 0.6
    # Other seeds hold out other blocks; the share follows `share` over many blocks.
    assert (held_out_blocks(1, "T1", rows, cols, classes, 0.25, 8) != held).any()
    many = held_out_blocks(0, "T1", rows, cols, classes, 0.25, 2)
    assert abs(many.mean() - 0.25) < 0.05
    # A class in two blocks keeps one back even when no key falls below the share.
    two = held_out_blocks(0, "T1", np.array([0, 0, 0]), np.array([0, 1, 9]), np.ones(3, int),
                          1e-9, 8)  # fmt: skip
    assert two.sum() in (1, 2) and len(set(two[:2])) == 1
    # ... and one for training when every key falls below it; one block is all training.
    assert held_out_blocks(0, "T1", np.array([0, 0, 0]), np.array([0, 1, 9]), np.ones(3, int),
                           0.999999, 8).sum() in (1, 2)  # fmt: skip
    assert not held_out_blocks(0, "T1", np.zeros(4, int), np.arange(4), np.ones(4, int), 0.99,
                               8).any()  # fmt: skip
    assert not held_out_blocks(0, "T1", rows, cols, classes, 0.0, 8).any()


def test_the_split_setting_chooses_blocks_or_pixels(tmp_path):
    tile, _, _, label_path = _scene(tmp_path)
    for split in ("blocks", "pixels"):
        out = tmp_path / split
        sample(tile, _settings(label_path, f"sample.split={split}", "sample.block=30"), out)
        _, merged = _load(out, tile)
        summary = json.loads(layout.sample_summary(out, tile).read_text())
        held = np.zeros(len(merged["y"]), bool)
        held[sum(summary["train"].values()) :] = True  # train shards come first in _load
        blocks = merged["row"] // 30 * 100 + merged["col"] // 30
        groups = {(b, y) for b, y in zip(blocks, merged["y"], strict=True)}
        mixed = [g for g in groups if len(set(held[(blocks == g[0]) & (merged["y"] == g[1])])) > 1]
        assert (not mixed) == (split == "blocks")


def _shore_scene(tmp_path, shore: bool):
    """Water (code 5) on the left half, dark in NIR with some spread; with `shore`, a 6-column
    strip of the water polygon lies on bright sand."""
    rng = np.random.default_rng(3)
    green = np.full((H, W), 800, np.uint16)
    red = np.full((H, W), 900, np.uint16)
    nir = rng.normal(2500, 200, (H, W)).astype(np.uint16)
    swir = np.full((H, W), 2000, np.uint16)
    labels = np.full((H, W), 10, np.uint8)
    labels[:, :60] = 5
    nir[:, :60] = rng.normal(350, 40, (H, 60)).astype(np.uint16)
    swir[:, :60] = 150
    if shore:
        nir[:, 54:60] = rng.normal(1800, 200, (H, 6)).astype(np.uint16)
    grid = utm_grid(32633, ORIGIN, 10, W, H)
    stack = tmp_path / "T33XYZ_stack.tif"
    write_array(stack, np.stack([green, red, nir, swir]), grid, nodata=0)
    ds = gdal.Open(str(stack), gdal.GA_Update)
    for i, name in enumerate(("B03", "B04", "B08", "B11"), start=1):
        ds.GetRasterBand(i).SetDescription(name)
    ds = None
    path = tmp_path / "polygons.tif"
    write_array(path, labels, grid)
    return Tile("T33XYZ_stack", stack), path


@pytest.mark.parametrize("shore", [True, False])
def test_bright_shore_inside_water_polygons_is_not_sampled_as_water(tmp_path, shore):
    tile, path = _shore_scene(tmp_path, shore)
    common = [f"sample.labels={path}", "sample.classes={10: 1, 5: 12}", "sample.patch=1",
              "sample.quota=100000"]  # fmt: skip
    out = tmp_path / "cleaned"
    sample(tile, load_settings(None, [*common, "sample.water_class=12"]), out)
    summary, s = _load(out, tile)
    on_shore = (s["y"] == 12) & (s["col"] >= 54)
    split = summary["water_split"]
    assert split["channel"] == "B08"
    if shore:
        assert split["applied"] and 350 < split["threshold"] < 1800  # DN: no scale set
        assert not on_shore.any()
        assert summary["dropped"]["water_nir"] == {"12": H * 6}
        assert (s["y"] == 12).sum() == H * 54
    else:
        assert not split["applied"] and split["separability"] < 0.7
        assert summary["dropped"]["water_nir"] == {}
        assert (s["y"] == 12).sum() == H * 60
    # Not asked for: every water pixel is a sample.
    plain = tmp_path / "plain"
    sample(tile, load_settings(None, [*common, "sample.water_class=12",
                                      "sample.water_separability=null"]), plain)  # fmt: skip
    summary, s = _load(plain, tile)
    assert summary["water_split"] is None and (s["y"] == 12).sum() == H * 60
