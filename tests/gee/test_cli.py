"""`watergee gee ...` end to end with no server: the command connects with a service account
key (the algorithm list comes from earthengine-api's own copy), downloads through a fake
computePixels, and never prints the key."""

import pytest
from typer.testing import CliRunner

from tests.gee.conftest import ACCOUNT
from watergee.cli.main import app

runner = CliRunner()


def _args(grid, out, key):
    return ["-vv", "gee", "download", "--grid", str(grid), "--out", str(out),
            "--set", f"gee.service_account={ACCOUNT}", "--set", f"gee.key_file={key}",
            "--set", "gee.project=water-project", "--set", "gee.cell_pixels=64"]  # fmt: skip


def test_download_command_with_a_service_account_never_shows_the_key(
    no_server, key_file, grid, tmp_path
):
    key, pem = key_file
    out = tmp_path / "tiles"
    result = runner.invoke(app, _args(grid, out, key))
    assert result.exit_code == 0, result.output
    assert "4 downloaded, 0 already complete, 0 failed; 4 requests" in result.output
    assert (out / "tiles.txt").read_text().count("features/") == 4
    secret_lines = [line for line in pem.splitlines() if "PRIVATE KEY" not in line]
    shown = result.output + (out / ".watergee" / "gee" / "failed.txt").read_text()
    assert not any(line in shown for line in secret_lines)
    assert "5ec7e7c0ffee5ec7e7" not in shown
    again = runner.invoke(app, _args(grid, out, key))
    assert again.exit_code == 0 and "0 downloaded, 4 already complete" in again.output


def test_a_failed_cell_exits_1_and_is_listed(no_server, key_file, grid, tmp_path):
    key, _ = key_file
    from watergee.core.config import GeeSettings
    from watergee.gee.download import cell_grids
    from watergee.gee.grid import read_grid

    first = cell_grids(read_grid(grid), GeeSettings(cell_pixels=64))[0]
    no_server.refuse_cell(first, [400])
    out = tmp_path / "tiles"
    result = runner.invoke(app, _args(grid, out, key))
    assert result.exit_code == 1
    assert f"watergee: error: {first.id}: Image.load: Image asset 'x' not found." in result.output
    assert (out / ".watergee/gee/failed.txt").read_text().startswith(first.id + "\t")


def test_a_key_of_another_account_is_named_without_its_content(key_file, grid, tmp_path):
    key, pem = key_file
    args = _args(grid, tmp_path / "t", key)
    args[args.index(f"gee.service_account={ACCOUNT}")] = "gee.service_account=other@x.com"
    result = runner.invoke(app, args)
    assert result.exit_code == 2
    assert f"{key}: key belongs to {ACCOUNT}, not to gee.service_account other@x.com" in (
        result.output
    )
    assert pem.splitlines()[1] not in result.output


def test_no_project_is_a_usage_error(grid, tmp_path, monkeypatch):
    monkeypatch.delenv("EE_PROJECT", raising=False)
    result = runner.invoke(app, ["gee", "download", "--grid", str(grid), "--out", str(tmp_path)])
    assert result.exit_code == 2
    assert "no Earth Engine project: set gee.project or EE_PROJECT" in result.output


def test_composite_command_writes_the_expression_without_credentials(grid, tmp_path):
    out = tmp_path / "composite.json"
    result = runner.invoke(app, ["gee", "composite", "--grid", str(grid), "--out", str(out),
                                 "--set", "gee.sensor=sentinel2"])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "sentinel2 median composite, months 6-8 of 2021, over 4 cells" in result.output
    assert "COPERNICUS/S2_SR_HARMONIZED" in out.read_text()


@pytest.mark.slow
def test_downloaded_cells_are_ordinary_tiles_for_denoise(no_server, key_file, grid, tmp_path):
    key, _ = key_file
    cells = tmp_path / "cells"
    assert runner.invoke(app, _args(grid, cells, key)).exit_code == 0
    result = runner.invoke(app, [
        "denoise", "--tiles", str(cells / "tiles.txt"), "--labels", str(cells / "labels"),
        "--out", str(tmp_path / "work"), "--set", "cluster.processes=false",
        "--set", "denoise.bands=[blue,green,red,nir,swir1,MNDWI,LINE,DEM/4000]",
        "--set", "denoise.indices=[]", "--set", "denoise.rounds=1", "--set", "denoise.epochs=1",
    ])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "4 tiles: 4 done, 0 skipped, 0 failed" in result.output
    assert len(list((tmp_path / "work").rglob("*_water_denoised.tif"))) == 4
