"""The 0.135 deg cell grid: known cells over known areas, ids that never change with the area,
and cells that only touch the area left out."""

import pytest
from osgeo import ogr, osr
from typer.testing import CliRunner

from watergee.cli.main import app
from watergee.core.errors import TileInputError
from watergee.gee.grid import cells_over, parse_bbox, read_area, read_grid, write_grid

runner = CliRunner()


def _ids(cells):
    return [c.id(4) for c in cells]


def test_cells_over_a_bounding_box_are_the_lattice_cells_it_meets():
    cells = cells_over(parse_bbox("10.0,50.0,10.3,50.2"), 0.135)
    # columns floor(190.0 / 0.135) .. floor(190.3 / 0.135), rows floor(39.8 / 0.135) ..
    assert [(c.row, c.col) for c in cells] == [(r, c) for r in (294, 295, 296)
                                               for c in (1407, 1408, 1409)]  # fmt: skip
    west, south, east, north = cells[0].bounds
    assert west == pytest.approx(-180 + 1407 * 0.135) and north == pytest.approx(90 - 294 * 0.135)
    assert west < 10.0 < east and south < 50.2 < north


def test_cells_that_only_touch_the_area_are_left_out():
    cells = cells_over(parse_bbox("10.0,50.0,10.5,50.5"), 0.25)  # on the lattice's lines
    assert len(cells) == 4
    assert {c.bounds for c in cells} == {
        (10.0, 50.25, 10.25, 50.5),
        (10.25, 50.25, 10.5, 50.5),
        (10.0, 50.0, 10.25, 50.25),
        (10.25, 50.0, 10.5, 50.25),
    }


def test_a_bigger_area_keeps_the_ids_of_a_smaller_one():
    small = _ids(cells_over(parse_bbox("10.0,50.0,10.3,50.2"), 0.135))
    big = _ids(cells_over(parse_bbox("9.0,49.0,11.0,51.0"), 0.135))
    assert set(small) < set(big) and len(big) == len(set(big))
    assert small == _ids(cells_over(parse_bbox("10.0,50.0,10.3,50.2"), 0.135))


def test_a_concave_area_leaves_out_the_cells_of_its_notch():
    l_shape = ogr.CreateGeometryFromWkt(
        "POLYGON ((0 0, 1 0, 1 0.25, 0.25 0.25, 0.25 1, 0 1, 0 0))")  # fmt: skip
    cells = cells_over(l_shape, 0.25)
    assert len(cells) == 7  # 4 x 4 box minus the 3 x 3 notch
    for c in cells:
        box = ogr.CreateGeometryFromWkt("POLYGON (({0} {1}, {2} {1}, {2} {3}, {0} {3}, {0} {1}))"
                                        .format(*c.bounds))  # fmt: skip
        assert l_shape.Intersection(box).GetArea() > 0


def _write_area(path, epsg, features):
    srs = osr.SpatialReference()
    srs.ImportFromEPSG(epsg)
    source = ogr.GetDriverByName("GPKG").CreateDataSource(str(path))
    layer = source.CreateLayer("area", srs, ogr.wkbPolygon)
    layer.CreateField(ogr.FieldDefn("name", ogr.OFTString))
    for name, wkt in features:
        feature = ogr.Feature(layer.GetLayerDefn())
        feature.SetField("name", name)
        feature.SetGeometry(ogr.CreateGeometryFromWkt(wkt))
        layer.CreateFeature(feature)
    del layer, source


def test_a_vector_area_in_another_crs_is_reprojected_and_filtered(tmp_path):
    path = tmp_path / "area.gpkg"
    # two squares in UTM 32N around (9.0 E, 50.0 N) and (9.6 E, 50.0 N), about 5 km wide
    _write_area(path, 32632, [
        ("a", "POLYGON ((497000 5536000, 502000 5536000, 502000 5541000, 497000 5541000, "
              "497000 5536000))"),
        ("b", "POLYGON ((540000 5536000, 545000 5536000, 545000 5541000, 540000 5541000, "
              "540000 5536000))"),
    ])  # fmt: skip
    west, east, south, north = read_area(path, "name = 'a'").GetEnvelope()
    assert 8.95 < west < 9.0 < east < 9.05 and 49.95 < south < 50.0 < north < 50.05
    both = cells_over(read_area(path), 0.135)
    assert set(_ids(cells_over(read_area(path, "name = 'a'"), 0.135))) < set(_ids(both))
    with pytest.raises(TileInputError, match=r"area\.gpkg: no features matching \"name = 'c'\""):
        read_area(path, "name = 'c'")


def test_the_grid_command_writes_a_geopackage_of_cells(tmp_path):
    out = tmp_path / "grid.gpkg"
    result = runner.invoke(app, ["gee", "grid", "--aoi", "10.0,50.0,10.3,50.2", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "9 cells of 0.135 deg" in result.output
    cells = read_grid(out)
    assert [c[0] for c in cells][:2] == ["r0294c1407", "r0294c1408"]
    assert cells[0][1][0] == pytest.approx(-180 + 1407 * 0.135)
    again = runner.invoke(app, ["gee", "grid", "--aoi", "10,50,10.3,50.2", "--out", str(out)])
    assert again.exit_code == 0 and read_grid(out) == cells


def test_the_grid_command_names_a_bad_area(tmp_path):
    result = runner.invoke(app, ["gee", "grid", "--aoi", str(tmp_path / "none.gpkg"),
                                 "--out", str(tmp_path / "g.gpkg")])  # fmt: skip
    assert result.exit_code == 2
    assert "none.gpkg: file not found" in result.output


def test_write_grid_round_trips(tmp_path):
    cells = cells_over(parse_bbox("-0.2,-0.2,0.2,0.2"), 0.135)
    write_grid(cells, tmp_path / "g.geojson", 0.135)
    assert [i for i, _ in read_grid(tmp_path / "g.geojson")] == _ids(cells)


def test_lattice_lines_that_floats_miss_do_not_add_touching_cells():
    assert len(cells_over(parse_bbox("10,50,11,51"), 0.1)) == 100
    assert len(cells_over(parse_bbox("-180,-90,180,90"), 10)) == 18 * 36


def test_a_grid_of_another_cell_size_is_refused(tmp_path):
    path = tmp_path / "g.gpkg"
    write_grid(cells_over(parse_bbox("10,50,10.4,50.4"), 0.2), path, 0.2)
    with pytest.raises(TileInputError, match=r"is 0\.2 deg, the settings say gee\.cell 0\.135"):
        read_grid(path, 0.135)
    assert len(read_grid(path, 0.2)) == 4
