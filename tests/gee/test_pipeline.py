"""The Earth Engine config of `watergee run`: download -> denoise -> sample -> train -> export,
each step reading what the one before wrote, with no tile list given (the download makes it)."""

import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from tests.gee.conftest import ACCOUNT
from watergee.cli.main import app

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "configs" / "earthengine-landsat.yaml"
runner = CliRunner()


def _config(grid: Path) -> Path:
    """The shipped config with the test's grid in its download step."""
    config = yaml.safe_load(CONFIG.read_text())
    config["pipeline"]["steps"][0] = {"gee-download": {"grid": str(grid)}}
    path = grid.parent / "earthengine.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def _args(grid: Path, out: Path, key: Path, *more: str) -> list[str]:
    sets = {
        "gee.service_account": ACCOUNT, "gee.key_file": key, "gee.project": "water-project",
        "gee.cell_pixels": 64, "denoise.rounds": 1, "denoise.epochs": 2, "sample.quota": 60,
        "train.epochs": 2, "cluster.processes": "false",
    }  # fmt: skip
    args = ["run", "--config", str(_config(grid)), "--out", str(out)]
    for key_name, value in sets.items():
        args += ["--set", f"{key_name}={value}"]
    return [*args, *more]


def test_the_plan_chains_the_download_into_the_tile_stages(grid, tmp_path, key_file):
    out = tmp_path / "run"
    result = runner.invoke(app, _args(grid, out, key_file[0], "--plan"))
    assert result.exit_code == 0, result.output
    lines = [line for line in result.output.splitlines() if line.startswith("watergee")]
    cells = out / "cells"
    assert lines[0].startswith(f"watergee gee download --grid {grid} --out {cells}")
    assert (
        f"denoise --tiles {cells}/tiles.txt --out {out}/tiles --labels {cells}/labels" in (lines[1])
    )
    assert f"--labels {out}/tiles/denoised.txt" in lines[2]
    assert f"--samples {out}/samples --model pixelcnn --out {out}/models/pixelcnn" in lines[3]
    assert lines[4].startswith(f"watergee gee export-model {out}/models/pixelcnn")


def test_a_first_step_that_makes_the_list_takes_no_tile_list(grid, tmp_path, key_file):
    tiles = tmp_path / "tiles.txt"
    tiles.write_text("a.tif\n")
    result = runner.invoke(app, _args(grid, tmp_path / "o", key_file[0], "--tiles", str(tiles)))
    assert result.exit_code == 2
    assert "the first step, gee-download, makes the tile list; give no --tiles" in result.output


def test_export_with_no_model_before_it_is_refused_before_anything_runs(tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text(f"pipeline:\n  tiles: {tmp_path / 't.txt'}\n  steps: [gee-export]\n")
    (tmp_path / "t.txt").write_text("a.tif\n")
    result = runner.invoke(app, ["run", "--config", str(config), "--out", str(tmp_path / "o")])
    assert result.exit_code == 2
    assert "(gee-export): needs 'model' (no train step before it)" in result.output


def test_the_grid_may_come_from_the_settings(grid, tmp_path, key_file):
    config = yaml.safe_load(CONFIG.read_text())
    config["pipeline"]["steps"][0] = "gee-download"
    config["gee"]["grid"] = str(grid)
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(config))
    result = runner.invoke(app, ["run", "--config", str(path), "--out", str(tmp_path), "--plan"])
    assert result.exit_code == 0, result.output
    assert f"watergee gee download --grid {grid} " in result.output


def test_a_failed_download_blocks_every_later_step(no_server, key_file, grid, tmp_path):
    from watergee.core.config import GeeSettings
    from watergee.gee.download import cell_grids
    from watergee.gee.grid import read_grid

    first = cell_grids(read_grid(grid), GeeSettings(cell_pixels=64))[0]
    no_server.refuse_cell(first, [400])
    out = tmp_path / "run"
    result = runner.invoke(app, _args(grid, out, key_file[0]))
    assert result.exit_code == 1, result.output
    assert f"1 of 4 cells failed (first {first.id}: Image.load" in result.output
    row = next(line for line in result.output.splitlines() if line.startswith("cells "))
    assert row.split() == ["cells", "FAIL", "block", "block", "block", "block"]
    assert not (out / "tiles").exists() and not (out / "models").exists()


@pytest.mark.slow
def test_the_earth_engine_pipeline_runs_end_to_end_and_resumes(no_server, key_file, grid,
                                                               tmp_path):  # fmt: skip
    out = tmp_path / "run"
    result = runner.invoke(app, _args(grid, out, key_file[0]))
    assert result.exit_code == 0, result.output
    assert "pipeline complete" in result.output
    assert no_server.calls == 4  # one request per 64 px cell
    cells = [line for line in (out / "cells/tiles.txt").read_text().splitlines()
             if not line.startswith("#")]  # fmt: skip
    assert len(cells) == 4
    denoised = (out / "tiles/denoised.txt").read_text()
    assert all(Path(c).stem + "_water_denoised.tif" in denoised for c in cells)
    manifest = json.loads((out / "samples/manifest.json").read_text())
    assert manifest["bands"] == ["blue", "green", "red", "nir", "swir1", "MNDWI", "LINE",
                                 "DEM/4000"]  # fmt: skip
    export = json.loads((out / "models/pixelcnn/earthengine/export.json").read_text())
    assert export["max_difference"] <= 1e-4 and export["outputs"][-1] == "class"
    again = runner.invoke(app, _args(grid, out, key_file[0]))
    assert again.exit_code == 0, again.output
    assert no_server.calls == 4  # nothing fetched again
    assert "pipeline complete" in again.output
    rows = [line.split() for line in again.output.splitlines() if line.startswith(("r0", "cells"))]
    assert len(rows) == 5 and all(cell in ("skip", ".") for row in rows for cell in row[1:])


def test_the_config_trains_as_the_paper_did():
    """water_gee trained on its eight features without augmentation or index channels beyond
    its own MNDWI and LINE."""
    from watergee.core.config import load_settings

    settings = load_settings(CONFIG)
    assert settings.train.augment_gain == 1 and settings.train.augment_haze == 0
    assert settings.train.augment_jitter == 0
    assert settings.sample.indices == [] and settings.sample.bands == settings.denoise.bands
