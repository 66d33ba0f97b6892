"""evaluate against reference rasters, polygons and points with known disagreement, and the
stratified sample design."""

import json

import numpy as np
import pytest
from osgeo import ogr, osr
from typer.testing import CliRunner

from watergee.cli.main import app
from watergee.core.config import load_settings
from watergee.core.errors import TileInputError
from watergee.core.tiles import Tile
from watergee.io.raster import open_raster, utm_grid, write_array
from watergee.stages.evaluate import evaluate

ORIGIN = (300_000, 5_850_000)


def _map(tmp_path):
    """100 x 80 px at 10 m: class 1 left of column 60, class 2 right; the top 5 rows no data."""
    data = np.ones((80, 100), np.uint8)
    data[:, 60:] = 2
    data[:5] = 255
    path = tmp_path / "map.tif"
    write_array(path, data, utm_grid(32633, ORIGIN, 10, 100, 80), nodata=255)
    return path, data


def _truth(data):
    """The map with a 10 x 10 block of class 2 inside class 1, and a no-data corner."""
    truth = data.copy()
    truth[truth == 255] = 1
    truth[10:20, 50:60] = 2
    truth[70:, 90:] = 0
    return truth


def _run(tmp_path, path, *sets):
    settings = load_settings(None, list(sets))
    result = evaluate(Tile("evaluation", path), settings, tmp_path / "out")
    report = json.loads((tmp_path / "out" / "evaluation" / "evaluation.json").read_text())
    return result, report


def test_raster_reference_gives_the_exact_confusion_matrix(tmp_path):
    path, data = _map(tmp_path)
    reference = tmp_path / "truth.tif"
    write_array(reference, _truth(data), utm_grid(32633, ORIGIN, 10, 100, 80), nodata=0)
    result, report = _run(tmp_path, path, f"evaluate.reference={reference}")
    # class 1 mapped on 75 x 60 = 4500 px, 100 of them truly 2; class 2 on 75 x 40 = 3000 px,
    # 100 of them without reference
    assert report["confusion_matrix"] == [[4400, 100], [0, 2900]]
    assert report["left_out"] == 500  # reference under the map's no-data rows
    assert report["design"] == "simple" and "area_adjusted" not in report
    assert report["sample"]["overall_accuracy"] == pytest.approx(7300 / 7400)
    assert report["sample"]["classes"]["1"]["users_accuracy"] == pytest.approx(4400 / 4500)
    html = (tmp_path / "out" / "evaluation" / "evaluation.html").read_text()
    assert "Confusion matrix" in html and "data:image/png;base64," in html
    assert result.outputs[2].read_bytes()[:4] == b"\x89PNG"


def test_raster_reference_on_another_grid_is_warped_by_nearest(tmp_path):
    path, _data = _map(tmp_path)
    coarse = np.ones((40, 50), np.uint8)
    coarse[:, 30:] = 2  # the map's classes at 20 m
    reference = tmp_path / "coarse.tif"
    write_array(reference, coarse, utm_grid(32633, ORIGIN, 20, 50, 40), nodata=0)
    _, report = _run(tmp_path, path, f"evaluate.reference={reference}")
    assert report["confusion_matrix"] == [[4500, 0], [0, 3000]]


def _polygons(path, srs_code, rings, classes, field="class"):
    srs = osr.SpatialReference()
    srs.ImportFromEPSG(srs_code)
    srs.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    ds = ogr.GetDriverByName("GPKG").CreateDataSource(str(path))
    layer = ds.CreateLayer("reference", srs, ogr.wkbPolygon)
    layer.CreateField(ogr.FieldDefn(field, ogr.OFTString))
    for ring, value in zip(rings, classes, strict=True):
        feature = ogr.Feature(layer.GetLayerDefn())
        feature.SetField(field, value)
        wkt = ", ".join(f"{x} {y}" for x, y in [*ring, ring[0]])
        feature.SetGeometry(ogr.CreateGeometryFromWkt(f"POLYGON (({wkt}))"))
        layer.CreateFeature(feature)
    ds = None
    return path


def _box(col0, row0, col1, row1):
    x0, y0 = ORIGIN
    return [(x0 + 10 * col0, y0 - 10 * row0), (x0 + 10 * col1, y0 - 10 * row0),
            (x0 + 10 * col1, y0 - 10 * row1), (x0 + 10 * col0, y0 - 10 * row1)]  # fmt: skip


def test_polygon_reference_burns_pixel_centres(tmp_path):
    path, _ = _map(tmp_path)
    # a 20 x 10 px polygon of class 1 straddling the class boundary at column 60, and a
    # 5 x 5 px one of class 2 inside class 2
    boxes = [_box(50, 20, 70, 30), _box(80, 40, 85, 45)]
    reference = _polygons(tmp_path / "ref.gpkg", 32633, boxes, ["1", "2"])
    _, report = _run(tmp_path, path, f"evaluate.reference={reference}")
    assert report["reference_kind"] == "polygons"
    assert report["confusion_matrix"] == [[100, 0], [100, 25]]


def test_a_class_attribute_that_is_not_a_code_names_the_feature(tmp_path):
    path, _ = _map(tmp_path)
    reference = _polygons(tmp_path / "ref.gpkg", 32633, [_box(0, 10, 5, 15), _box(0, 20, 5, 25)],
                          ["1", "water"])  # fmt: skip
    with pytest.raises(TileInputError, match=r"ref.gpkg: feature 2: class 'water' is not a class"):
        _run(tmp_path, path, f"evaluate.reference={reference}")
    with pytest.raises(TileInputError, match=r"ref.gpkg: no attribute 'code' \(has class\)"):
        _run(tmp_path, path, f"evaluate.reference={reference}", "evaluate.field=code")


def _label(sample, truth, grid):
    """Fill the sample's class field from a truth array, as a person labelling it would."""
    ds = ogr.Open(str(sample), 1)
    layer = ds.GetLayer(0)
    x0, dx, _, y0, _, dy = grid.transform
    labels = []
    for feature in layer:
        point = feature.GetGeometryRef()
        row, col = int((point.GetY() - y0) // dy), int((point.GetX() - x0) // dx)
        feature.SetField("class", int(truth[row, col]))
        layer.SetFeature(feature)
        labels.append((feature.GetField("stratum"), int(truth[row, col])))
    ds = None
    return labels


def test_sample_design_then_points_give_area_adjusted_estimates(tmp_path):
    path, data = _map(tmp_path)
    truth = _truth(data)
    truth[70:, 90:] = 2
    sets = ["evaluate.sample_design=true", "evaluate.sample_size=120", "evaluate.min_per_class=30"]
    drawn = evaluate(Tile("evaluation", path), load_settings(None, sets), tmp_path / "out")
    sample = drawn.outputs[0]
    assert drawn.info["allocation"] == {1: 72, 2: 48}  # 4500 : 3000 of 120
    grid = open_raster(path)
    from watergee.io.raster import grid_of

    labels = _label(sample, truth, grid_of(grid))
    assert sorted({s for s, _ in labels}) == [1, 2] and len(labels) == 120
    _, report = _run(tmp_path, path, f"evaluate.reference={sample}")
    expected = np.zeros((2, 2), int)
    for stratum, label in labels:
        expected[stratum - 1, label - 1] += 1
    assert report["confusion_matrix"] == expected.tolist()
    assert report["design"] == "stratified" and report["reference_kind"] == "points"
    adjusted = report["area_adjusted"]
    assert adjusted["mapped_pixels_total"] == 7500 and adjusted["pixel_area_m2"] == 100.0
    ones = expected[0]
    # class 2's area: all of stratum 2 plus stratum 1's share of class-2 labels
    area_2 = 3000 + 4500 * ones[1] / ones.sum()
    assert adjusted["classes"]["2"]["area_pixels"] == pytest.approx(area_2)
    assert adjusted["classes"]["2"]["area_m2"] == pytest.approx(area_2 * 100)
    html = (tmp_path / "out" / "evaluation" / "evaluation.html").read_text()
    assert "Olofsson" in html and "area (ha)" in html


def test_sample_design_is_reproducible_and_lies_on_the_strata(tmp_path):
    path, data = _map(tmp_path)

    def draw(seed, out):
        sets = ["evaluate.sample_design=true", "evaluate.sample_size=40",
                "evaluate.min_per_class=10", f"evaluate.seed={seed}"]  # fmt: skip
        result = evaluate(Tile("evaluation", path), load_settings(None, sets), tmp_path / out)
        ds = ogr.Open(str(result.outputs[0]))
        return [(f.GetGeometryRef().GetX(), f.GetGeometryRef().GetY(), f.GetField("stratum"),
                 f.GetField("class")) for f in ds.GetLayer(0)]  # fmt: skip

    first, again, other = draw(0, "a"), draw(0, "b"), draw(1, "c")
    assert first == again and first != other
    assert len({(x, y) for x, y, _, _ in first}) == 40  # without replacement
    for x, y, stratum, label in first:
        row, col = int((ORIGIN[1] - y) // 10), int((x - ORIGIN[0]) // 10)
        assert (x - ORIGIN[0]) % 10 == 5  # pixel centres
        assert data[row, col] == stratum and label is None


def test_unlabelled_points_are_left_out_and_thin_strata_refused(tmp_path):
    path, _data = _map(tmp_path)
    sets = ["evaluate.sample_design=true", "evaluate.sample_size=20", "evaluate.min_per_class=5"]
    sample = evaluate(Tile("evaluation", path), load_settings(None, sets), tmp_path / "d").outputs[
        0
    ]
    ds = ogr.Open(str(sample), 1)
    layer = ds.GetLayer(0)
    twos = 0
    for feature in layer:  # label the class-1 points, and a single class-2 point
        stratum = feature.GetField("stratum")
        twos += stratum == 2
        if stratum == 1 or twos == 1:
            feature.SetField("class", stratum)
            layer.SetFeature(feature)
    ds = None
    with pytest.raises(TileInputError, match=r"mapped class 2 has 1 sample unit.*design=simple"):
        _run(tmp_path, path, f"evaluate.reference={sample}")
    _, report = _run(tmp_path, path, f"evaluate.reference={sample}", "evaluate.design=simple")
    assert report["unlabelled"] == 7 and report["sample"]["units"] == 13


def test_points_in_another_crs_are_reprojected(tmp_path):
    path, _data = _map(tmp_path)
    utm, geographic = osr.SpatialReference(), osr.SpatialReference()
    utm.ImportFromEPSG(32633)
    geographic.ImportFromEPSG(4326)
    for srs in (utm, geographic):
        srs.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    to_lonlat = osr.CoordinateTransformation(utm, geographic)
    ds = ogr.GetDriverByName("GeoJSON").CreateDataSource(str(tmp_path / "points.geojson"))
    layer = ds.CreateLayer("points", geographic, ogr.wkbPoint)
    layer.CreateField(ogr.FieldDefn("class", ogr.OFTInteger))
    cells = [(10, 10, 1), (10, 70, 2), (50, 30, 2), (2, 2, 1)]  # the last on no data
    for row, col, label in cells:
        lon, lat, _ = to_lonlat.TransformPoint(ORIGIN[0] + 10 * col + 5, ORIGIN[1] - 10 * row - 5)
        feature = ogr.Feature(layer.GetLayerDefn())
        feature.SetField("class", label)
        feature.SetGeometry(ogr.CreateGeometryFromWkt(f"POINT ({lon} {lat})"))
        layer.CreateFeature(feature)
    ds = None
    _, report = _run(tmp_path, path, f"evaluate.reference={tmp_path / 'points.geojson'}",
                     "evaluate.design=simple")  # fmt: skip
    assert report["confusion_matrix"] == [[1, 1], [0, 1]] and report["left_out"] == 1


def test_cli_needs_a_reference_or_the_sample_design_and_resumes(tmp_path):
    path, data = _map(tmp_path)
    reference = tmp_path / "truth.tif"
    write_array(reference, _truth(data), utm_grid(32633, ORIGIN, 10, 100, 80), nodata=0)
    runner = CliRunner()
    out = tmp_path / "out"
    missing = runner.invoke(app, ["evaluate", "--classified", str(path), "--out", str(out)])
    assert missing.exit_code == 2 and "--reference (or --sample-design)" in missing.output
    args = [
        "evaluate",
        "--classified",
        str(path),
        "--reference",
        str(reference),
        "--out",
        str(out),
        "--name",
        "check",
        "--set",
        "cluster.processes=false",
        "--workers",
        "1",
    ]
    first = runner.invoke(app, args)
    assert first.exit_code == 0, first.output
    assert (out / "check" / "check.html").exists()
    again = runner.invoke(app, args)
    assert again.exit_code == 0 and "1 skipped" in again.output
