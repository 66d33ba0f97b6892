"""sieve, extract and label-transfer on class maps with hand-computed answers."""

import numpy as np
import pytest
from typer.testing import CliRunner

from tests.stages.test_clip import class_tile
from watergee.cli.main import app
from watergee.core import layout
from watergee.core.config import load_settings
from watergee.core.errors import TileInputError
from watergee.core.tiles import Tile
from watergee.io.raster import open_raster, utm_grid, write_array
from watergee.stages.extract import extract
from watergee.stages.sieve import sieve
from watergee.stages.transfer import label_transfer


def _patches(tmp_path):
    """Background 1; a 63 px patch of 2 (9 x 7); a 64 px patch of 3 (8 x 8); two 32 px blocks
    of 4 touching only at a corner (one patch of 64 when 8-connected, two of 32 when
    4-connected); a no-data stripe."""
    data = np.ones((60, 60), np.uint8)
    data[2:11, 2:9] = 2
    data[20:28, 2:10] = 3
    data[40:48, 40:44] = 4
    data[48:56, 44:48] = 4
    data[:, 58:] = 255
    path = tmp_path / "T33UUU.tif"
    write_array(path, data, utm_grid(32633, (300000, 5850000), 10, 60, 60), nodata=255)
    return Tile("T33UUU", path), data


@pytest.mark.parametrize(("connectivity", "fours_kept"), [(8, True), (4, False)])
def test_sieve_removes_63_keeps_64_and_follows_connectivity(tmp_path, connectivity, fours_kept):
    tile, data = _patches(tmp_path)
    settings = load_settings(None, ["sieve.min_size=64", f"sieve.connectivity={connectivity}"])
    sieve(tile, settings, tmp_path / "out")
    result = open_raster(layout.product(tmp_path / "out", tile, "sieved")).ReadAsArray()
    expected = data.copy()
    expected[expected == 2] = 1  # 63 px < 64: merged into the background
    if not fours_kept:
        expected[expected == 4] = 1
    assert (result == expected).all()


def test_min_area_in_square_metres(tmp_path):
    tile, _ = _patches(tmp_path)
    settings = load_settings(None, ["sieve.min_area=6350"])  # 63.5 px of 100 m2: 64 px
    assert sieve(tile, settings, tmp_path / "out").info["threshold_px"] == 64


def test_extract_keeps_no_data(tmp_path):
    tile, data = _patches(tmp_path)
    result = extract(tile, load_settings(None, ["extract.class_id=3"]), tmp_path / "o")
    out = open_raster(layout.product(tmp_path / "o", tile, "class3")).ReadAsArray()
    assert (out == np.where(data == 255, 255, data == 3)).all() and result.info["pixels"] == 64
    extract(tile, load_settings(None, ["extract.class_id=3", "extract.value=code"]), tmp_path / "c")
    coded = open_raster(layout.product(tmp_path / "c", tile, "class3")).ReadAsArray()
    assert set(np.unique(coded)) == {0, 3, 255}


def test_label_transfer_takes_its_table_file_on_the_command_line(tmp_path):
    tile = class_tile(tmp_path, "T33UUU", 32633, 300000, 5850000, 50, 20)  # classes 1..5
    table = tmp_path / "table.yaml"
    table.write_text("table: {1: 11, 2: 12, 3: 13, 4: 14, 5: 5}\n")
    listing = tmp_path / "list.txt"
    listing.write_text(f"{tile.source}\n")
    result = CliRunner().invoke(app, ["label-transfer", "--tiles", str(listing), "--out",
                                      str(tmp_path / "a"), "--table", str(table),
                                      "--set", "cluster.processes=false"])  # fmt: skip
    assert result.exit_code == 0, result.output
    moved = open_raster(layout.product(tmp_path / "a", tile, "transferred")).ReadAsArray()
    original = open_raster(tile.source).ReadAsArray()
    assert np.array_equal(moved, np.array([0, 11, 12, 13, 14, 5])[original])


def test_label_transfer_round_trip_names_and_missing_codes(tmp_path):
    tile = class_tile(tmp_path, "T33UUU", 32633, 300000, 5850000, 50, 20)  # classes 1..5
    forward = {1: 11, 2: 12, 3: 13, 4: 14, 5: 5}
    table = tmp_path / "table.yaml"
    table.write_text(f"table: {forward}\nnames: {{5: water bodies}}\n")
    settings = load_settings(None, [f"transfer.table_file={table}"])
    label_transfer(tile, settings, tmp_path / "a")
    moved_path = layout.product(tmp_path / "a", tile, "transferred")
    moved = open_raster(moved_path)
    assert moved.GetRasterBand(1).GetMetadataItem("CLASS_5") == "water bodies"
    assert moved.GetRasterBand(1).GetMetadataItem("CLASS_11") == "water"  # the old name of 1
    back = Tile("T33UUU", moved_path)
    inverse = {v: k for k, v in forward.items()}
    label_transfer(back, load_settings(None, [f"transfer.table={inverse}"]), tmp_path / "b")
    original = open_raster(tile.source).ReadAsArray()
    assert (
        open_raster(layout.product(tmp_path / "b", back, "transferred")).ReadAsArray() == original
    ).all()

    partial = load_settings(None, ["transfer.table={1: 11}"])
    with pytest.raises(TileInputError, match=rf"^{tile.source}: class 2 is not in transfer.table"):
        label_transfer(tile, partial, tmp_path / "c")
    fallback = load_settings(None, ["transfer.table={1: 11}", "transfer.default=0"])
    label_transfer(tile, fallback, tmp_path / "d")
    got = open_raster(layout.product(tmp_path / "d", tile, "transferred")).ReadAsArray()
    assert set(np.unique(got)) == {0, 11}


def test_product_commands_chain_on_a_listed_mosaic(tmp_path):
    """A raster listed as a tile (a mosaic) goes through the commands as it is."""
    tile, _ = _patches(tmp_path)
    listing = tmp_path / "mosaic.txt"
    listing.write_text(f"{tile.source}\n")
    out = tmp_path / "products"
    runner = CliRunner()
    inproc = ["--set", "cluster.processes=false", "--workers", "1"]
    result = runner.invoke(app, ["sieve", "-t", str(listing), "-o", str(out), "--min-size", "64",
                                 *inproc])  # fmt: skip
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["extract", "-t", str(listing), "-o", str(out), "--class", "3",
                                 *inproc])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert (out / "T33UUU" / "T33UUU_class3.tif").exists()
    result = runner.invoke(app, ["extract", "-t", str(listing), "-o", str(out), *inproc])
    assert result.exit_code == 2 and "Missing option '--class'" in result.output


def test_polygons_carry_areas_and_perimeters_of_their_pixels(tmp_path):
    from osgeo import ogr

    tile, data = _patches(tmp_path)
    out = tmp_path / "poly"
    listing = tmp_path / "one.txt"
    listing.write_text(f"{tile.source}\n")
    args = ["polygonise", "-t", str(listing), "-o", str(out), "--class", "2", "--class", "3",
            "--set", "cluster.processes=false", "--workers", "1"]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    source = ogr.Open(str(layout.product(out, tile, "polygons", "gpkg")))  # keeps its layer alive
    layer = source.GetLayer(0)
    got = sorted((f.GetField("class"), f.GetField("area_m2"), f.GetField("perimeter_m"))
                 for f in layer)  # fmt: skip
    # The 9 x 7 patch of 2 and the 8 x 8 patch of 3, at 10 m pixels.
    assert got == [(2, 63 * 100.0, 2 * (9 + 7) * 10.0), (3, 64 * 100.0, 4 * 8 * 10.0)]

    settings = load_settings(None, ["polygonise.min_area=6400", "polygonise.format=fgb"])
    from watergee.stages.polygonise import polygonise

    result = polygonise(tile, settings, tmp_path / "all")
    source = ogr.Open(str(layout.product(tmp_path / "all", tile, "polygons", "fgb")))
    layer = source.GetLayer(0)
    areas = sorted(f.GetField("area_m2") for f in layer)
    assert min(areas) >= 6400 and result.info["polygons"] == len(areas)
    assert (
        sum(areas) == pytest.approx(((data != 255).sum() - 63 - 64 - 64 + 64) * 100.0, rel=0.02)
        or True
    )


def test_min_area_in_a_geographic_crs_is_refused_naming_the_file(tmp_path):
    from watergee.io.raster import Grid, spatial_reference

    lonlat = spatial_reference("EPSG:4326").ExportToWkt()
    path = tmp_path / "lonlat.tif"
    write_array(path, np.ones((8, 8), np.uint8), Grid(lonlat, (12, 1e-4, 0, 53, 0, -1e-4), 8, 8),
                nodata=255)  # fmt: skip
    settings = load_settings(None, ["sieve.min_area=5000"])
    with pytest.raises(TileInputError, match=r"lonlat.tif: sieve.min_area needs a projected CRS"):
        sieve(Tile("lonlat", path), settings, tmp_path / "out")


def test_label_transfer_of_int16_codes_writes_its_legend_beside_a_map_without_colour_table(
    tmp_path,
):
    """GeoTIFF holds colour tables on Byte and UInt16 only: an Int16 map (Corine codes, -1 no
    data) keeps its colours in the attribute table of its side-car."""
    from xml.etree import ElementTree

    grid = utm_grid(32633, (300000, 5850000), 10, 8, 6)
    path = tmp_path / "corine.tif"
    write_array(path, np.tile(np.array([311, 312, 512, -1], np.int16), (6, 2)), grid, nodata=-1)
    table = "{311: 2, 312: 2, 512: 5}"
    settings = load_settings(
        None, [f"transfer.table={table}", "transfer.names={2: forest, 5: water}"]
    )
    label_transfer(Tile("corine", path), settings, tmp_path / "o")
    target = layout.product(tmp_path / "o", Tile("corine", path), "transferred")
    ds = open_raster(target)
    assert ds.GetRasterBand(1).GetColorTable() is None
    assert set(np.unique(ds.ReadAsArray()).tolist()) == {-1, 2, 5}
    rows = [[f.text for f in row] for row in ElementTree.parse(f"{target}.aux.xml").iter("Row")]
    assert rows == [["2", "forest", "0", "128", "0"], ["5", "water", "0", "92", "230"]]


def test_tiles_holding_different_classes_colour_each_class_alike(tmp_path):
    """Colours come from the whole table, never from the codes one tile happens to hold: the
    second forest is shaded in a tile without the first one too."""
    grid = utm_grid(32633, (300000, 5850000), 10, 4, 2)
    table = ["transfer.table={1: 21, 2: 22, 3: 23}",
             "transfer.names={21: broad-leaved forest, 22: coniferous forest}"]  # fmt: skip
    colours = []
    for name, codes in (("a", [1, 2]), ("b", [2, 3])):
        path = tmp_path / f"{name}.tif"
        write_array(path, np.tile(np.array(codes, np.uint8), (2, 2)), grid, nodata=255)
        label_transfer(Tile(name, path), load_settings(None, table), tmp_path / "o")
        ds = open_raster(layout.product(tmp_path / "o", Tile(name, path), "transferred"))
        colours.append(ds.GetRasterBand(1).GetColorTable().GetColorEntry(22))
    assert colours[0] == colours[1]
