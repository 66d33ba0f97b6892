"""STAC Items, Catalogs and MLM records, validated offline against the published schemas."""

import json
from pathlib import Path

import numpy as np
import pystac
import pytest
from pystac.validation import set_validator
from pystac.validation.stac_validator import JsonSchemaSTACValidator
from typer.testing import CliRunner

from watergee.cli.main import app
from watergee.io.raster import utm_grid, write_array
from watergee.io.stac import item_path, write_item, write_model_record

SCHEMAS = Path(__file__).parents[1] / "data" / "stac-schemas"


@pytest.fixture(autouse=True)
def offline_validator():
    """pystac's validator with the extension schemas read from disk, never the network."""
    validator = JsonSchemaSTACValidator()
    for path in SCHEMAS.glob("*.json"):
        name, version = path.stem.rsplit("-v", 1)
        uri = f"https://stac-extensions.github.io/{name}/v{version}/schema.json"
        validator.schema_cache[uri] = json.loads(path.read_text())
    set_validator(validator)
    yield
    set_validator(JsonSchemaSTACValidator())


def _class_map(folder: Path, name: str) -> Path:
    data = np.full((60, 80), 2, np.uint8)
    data[10:30, 10:40] = 1
    data[:, 70:] = 255
    path = folder / f"{name}.tif"
    write_array(path, data, utm_grid(32633, (300_000, 5_850_000), 10, 80, 60), nodata=255)
    from osgeo import gdal

    ds = gdal.Open(str(path), gdal.GA_Update)
    band = ds.GetRasterBand(1)
    band.SetMetadata({"CLASS_1": "open water", "CLASS_2": "land"})
    table = gdal.ColorTable()
    table.SetColorEntry(1, (0, 92, 230, 255))
    table.SetColorEntry(2, (255, 170, 0, 255))
    band.SetColorTable(table)
    ds.SetMetadata({"MODEL": str(folder / "model"), "TILE": name})
    ds = None
    return path


def test_a_raster_item_describes_extent_crs_classes_and_file(tmp_path):
    source = _class_map(tmp_path, "T33UUU_20230715T101031")
    item_file = write_item(source, [], "classify")
    assert item_file == tmp_path / "T33UUU_20230715T101031.stac.json"
    item = pystac.Item.from_file(str(item_file))
    assert item.validate()  # raises with the schema's reason when invalid
    assert item.properties["proj:code"] == "EPSG:32633"
    assert item.properties["proj:shape"] == [60, 80]
    assert item.properties["proj:transform"][:6] == [300_000, 10, 0, 5_850_000, 0, -10]
    assert item.datetime.isoformat() == "2023-07-15T10:10:31+00:00"  # from the name
    west, south, east, north = item.bbox
    assert 12.0 < west < east < 12.1 and 52.7 < south < north < 52.8  # 300 km east in 33N
    asset = item.assets["data"].to_dict()
    assert asset["raster:bands"] == [{"nodata": 255.0, "data_type": "uint8",
                                      "spatial_resolution": 10.0}]  # fmt: skip
    classes = {c["value"]: c for c in asset["classification:classes"]}
    assert classes[1]["name"] == "open_water" and classes[1]["title"] == "open water"
    assert classes[1]["color_hint"] == "005CE6" and classes[255]["nodata"] is True
    assert asset["file:size"] == source.stat().st_size
    import hashlib

    assert asset["file:checksum"] == "1220" + hashlib.sha256(source.read_bytes()).hexdigest()


def test_items_link_their_sources_and_the_model(tmp_path):
    model = tmp_path / "model"
    model.mkdir()
    (model / "net.keras").write_bytes(b"weights")
    metadata = {"kind": "pixelcnn", "file": "net.keras", "channels": ["B02", "B03", "B08"],
                "scaling": "reflectance", "patch": 5, "receptive_field": 5,
                "classes": [{"id": 1, "name": "water"}, {"id": 2, "name": "land"}],
                "versions": {"tensorflow": "2.19.0"}}  # fmt: skip
    record = write_model_record(model, metadata)
    source = _class_map(tmp_path, "tile")
    write_item(source, [], "classify")
    product = _class_map(tmp_path, "tile_sieved")
    item = pystac.Item.from_file(str(write_item(product, [source], "sieve")))
    item.validate()
    links = {x.title: x.get_absolute_href() for x in item.links if x.rel == "derived_from"}
    assert Path(links["tile.tif"]).name == "tile.stac.json"  # the source's Item
    assert Path(links["model"]).resolve() == record.resolve()


def test_the_model_record_is_valid_mlm(tmp_path):
    model = tmp_path / "rf-model"
    model.mkdir()
    (model / "model.joblib").write_bytes(b"x")
    metadata = {"kind": "rf", "file": "model.joblib", "channels": ["B02", "B03", "MNDWI"],
                "scaling": "reflectance", "patch": 1, "receptive_field": 1,
                "classes": [{"id": 1, "name": "water"}, {"id": 2, "name": "land"}]}  # fmt: skip
    item = pystac.Item.from_file(str(write_model_record(model, metadata)))
    schemas = item.validate()
    assert any("mlm" in uri for uri in schemas)
    assert item.properties["mlm:input"][0]["bands"] == ["B02", "B03", "MNDWI"]
    assert item.properties["mlm:input"][0]["input"]["shape"] == [-1, 1, 1, 3]
    assert [c["value"] for c in item.properties["mlm:output"][0]["classification:classes"]] == [
        1, 2,
    ]  # fmt: skip
    assert item.assets["model"].roles == ["mlm:model"]
    assert item.properties["mlm:framework"] == "scikit-learn"


def test_product_stages_write_items_and_a_valid_catalog(tmp_path):
    source = _class_map(tmp_path, "mosaic")
    listing = tmp_path / "list.txt"
    listing.write_text(f"{source}\n")
    out = tmp_path / "products"
    inproc = ["--set", "cluster.processes=false", "--workers", "1"]
    runner = CliRunner()
    for args in (["sieve", "--min-size", "4"], ["polygonise", "--input", "sieved"]):
        result = runner.invoke(app, [*args, "-t", str(listing), "-o", str(out), *inproc])
        assert result.exit_code == 0, result.output
    sieved = out / "mosaic" / "mosaic_sieved.tif"
    polygons = out / "mosaic" / "mosaic_polygons.gpkg"
    for product in (sieved, polygons):
        pystac.Item.from_file(str(item_path(product))).validate()
    vector = pystac.Item.from_file(str(item_path(polygons)))
    assert vector.assets["data"].media_type == "application/geopackage+sqlite3"
    names = {
        c["value"]: c["title"] for c in vector.assets["data"].to_dict()["classification:classes"]
    }
    assert names == {1: "open water", 2: "land"}
    catalog = pystac.Catalog.from_file(str(out / "catalog.json"))
    catalog.validate()
    hrefs = sorted(Path(link.href).name for link in catalog.links if link.rel == "item")
    assert hrefs == ["mosaic_polygons.stac.json", "mosaic_sieved.stac.json"]
    items = list(catalog.get_items())
    assert {i.id for i in items} == {"mosaic_sieved", "mosaic_polygons"}
