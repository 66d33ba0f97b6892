"""`watergee gee predict`: the network over the composite as an export task, class band
pyramided by mode, on the download lattice; checked offline with --dry-run."""

import json

import numpy as np
from typer.testing import CliRunner

from tests.conftest import randomise_weights
from tests.gee.test_export import CHANNELS, _artifact
from watergee.cli.main import app
from watergee.gee.grid import cells_over, parse_bbox, write_grid
from watergee.models.pixelcnn import build_pixelcnn

runner = CliRunner()


def _summary(output: str) -> dict:
    return json.loads(output[output.index("{") :])


def test_predict_dry_run_builds_an_asset_export_pyramided_by_mode(tmp_path):
    model = build_pixelcnn(8)
    randomise_weights(model, 2)
    folder = _artifact(tmp_path / "cnn", model)
    grid = tmp_path / "grid.gpkg"
    write_grid(cells_over(parse_bbox("10.0,50.0,10.2,50.1"), 0.135), grid, 0.135)
    result = runner.invoke(app, ["gee", "predict", str(folder), "--grid", str(grid), "--dry-run",
                                 "--dest", "projects/p/assets/water_2021"])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "check on water, swir: swir1 > 0.15" in result.output
    assert "check on water, vegetation: NDVI(red, nir) > 0.25 and nir > 0.1" in result.output
    summary = _summary(result.output)
    options = summary["assetExportOptions"]
    assert options["pyramidingPolicyOverrides"] == {"class": "MODE"}
    assert options["earthEngineDestination"]["name"].endswith("projects/p/assets/water_2021")
    assert summary["maxPixels"] == {"value": "10000000000000"}
    drive = runner.invoke(app, ["gee", "predict", str(folder), "--grid", str(grid), "--dry-run",
                                "--to", "drive", "--dest", "maps"])  # fmt: skip
    assert drive.exit_code == 0, drive.output
    assert _summary(drive.output)["fileExportOptions"]["driveDestination"]["folder"] == "maps"


def test_predict_refuses_a_model_of_other_channels(tmp_path):
    folder = _artifact(tmp_path / "cnn", build_pixelcnn(8), channels=[*CHANNELS[:7], "NDVI"])
    grid = tmp_path / "grid.gpkg"
    write_grid(cells_over(parse_bbox("10.0,50.0,10.2,50.1"), 0.135), grid, 0.135)
    result = runner.invoke(app, ["gee", "predict", str(folder), "--grid", str(grid), "--dry-run"])
    assert result.exit_code == 2
    assert "model channels blue, green, red, nir, swir1, MNDWI, LINE, NDVI" in result.output


def test_the_export_is_on_the_download_lattice(ee_offline):
    from watergee.core.config import GeeSettings
    from watergee.gee.predict import export_task, lattice_transform

    ee = ee_offline
    transform = lattice_transform(GeeSettings(), 9.945, 50.31)
    assert transform == [0.135 / 512, 0.0, 9.945, 0.0, -0.135 / 512, 50.31]
    region = ee.Geometry.Rectangle([9.945, 50.04, 10.215, 50.31])
    task = export_task(ee.Image("x").rename("class"), "storage", "bucket", "w", region, transform)
    text = json.dumps(ee.serializer.encode(task.config["expression"], for_cloud_api=True))
    assert json.dumps({"constantValue": transform}) in text and '"EPSG:4326"' in text
    assert task.config["fileExportOptions"]["cloudStorageDestination"]["bucket"] == "bucket"


def test_water_failing_a_check_loses_its_class_in_earth_engine_as_it_does_locally(ee_offline):
    """The checks as an expression, evaluated locally on known reflectances."""
    from watergee.core.config import load_settings
    from watergee.gee.composite import FEATURE_BANDS
    from watergee.gee.interpreter import evaluate, image_from_array
    from watergee.gee.predict import water_checked
    from watergee.models.artifact import ClassInfo

    ee = ee_offline
    classes = [ClassInfo(id=4, name="land"), ClassInfo(id=7, name="Water"), ClassInfo(id=9)]
    names = ["probability_4", "probability_7", "probability_9"]
    # 0 clear water, 1 bright in the SWIR, 2 vegetation, 3 green but dark in the NIR, 4 bright
    # and the model certain of water, 5 bright but land the most probable, 6 red + NIR = 0,
    # 7 bright but masked in the composite
    reflectance = {"red": [0.04, 0.05, 0.05, 0.015, 0.05, 0.05, -0.2, 0.05],
                   "nir": [0.03, 0.05, 0.2, 0.06, 0.05, 0.05, 0.2, 0.05],
                   "swir1": [0.02, 0.3, 0.08, 0.02, 0.3, 0.3, 0.02, 0.3]}  # fmt: skip
    composite = np.zeros((len(FEATURE_BANDS), 1, 8))
    for band, values in reflectance.items():
        composite[FEATURE_BANDS.index(band), 0] = values
    water_first = [0.2, 0.7, 0.1]
    p = np.array([water_first] * 4 + [[0.0, 1.0, 0.0], [0.7, 0.2, 0.1]] + [water_first] * 2)
    mask = np.array([[True] * 7 + [False]])
    image, rules = water_checked(ee.Image("p"), ee.Image("c"), classes, load_settings().classify)
    assert rules == {"swir": "swir1 > 0.15", "vegetation": "NDVI(red, nir) > 0.25 and nir > 0.1"}
    encoded = ee.serializer.encode(image, for_cloud_api=True)
    sources = {"p": image_from_array(p.T[:, None, :], names),
               "c": image_from_array(composite, FEATURE_BANDS, mask)}  # fmt: skip
    bands = evaluate(encoded, sources)
    assert [b.name for b in bands] == names
    got = np.stack([b.data[0] for b in bands], axis=-1)
    unchanged = [0, 3, 5, 6, 7]
    np.testing.assert_allclose(got[unchanged], p[unchanged])
    np.testing.assert_allclose(got[[1, 2]], [[2 / 3, 0, 1 / 3]] * 2)
    np.testing.assert_array_equal(bands[0].mask[0], [True] * 4 + [False] + [True] * 3)
    off = load_settings(None, ["classify.water_max_swir=null", "classify.water_class=4"])
    assert water_checked(ee.Image("p"), ee.Image("c"), classes, off.classify)[1] == {
        "swir": "off (classify.water_max_swir: null)",
        "vegetation": "NDVI(red, nir) > 0.25 and nir > 0.1",
    }
    unnamed = [ClassInfo(id=4, name="land"), ClassInfo(id=7, name="lake")]
    _, rules = water_checked(ee.Image("p"), ee.Image("c"), unnamed, load_settings().classify)
    assert set(rules.values()) == {
        "off (no water class among the model's classes, or no other class)"
    }


def test_predict_refuses_a_water_class_the_model_lacks(tmp_path):
    folder = _artifact(tmp_path / "cnn", build_pixelcnn(8))
    grid = tmp_path / "grid.gpkg"
    write_grid(cells_over(parse_bbox("10.0,50.0,10.2,50.1"), 0.135), grid, 0.135)
    result = runner.invoke(app, ["gee", "predict", str(folder), "--grid", str(grid), "--dry-run",
                                 "--set", "classify.water_class=5"])  # fmt: skip
    assert result.exit_code == 2
    assert "model.json: classify.water_class 5 is not one of the model's classes [1, 2]" in (
        result.output
    )
