"""`watergee gee predict`: the network over the composite as an export task, class band
pyramided by mode, on the download lattice; checked offline with --dry-run."""

import json

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
