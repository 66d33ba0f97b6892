"""watergee run: steps chained through one output folder, failed tiles blocked at later steps,
run-wide steps only over complete inputs, and the same outputs as the steps' own commands."""

import contextlib
import re
import shlex
import shutil
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from watergee.cli.main import app
from watergee.core import records
from watergee.core.errors import ConfigError
from watergee.core.pipeline import plan_pipeline, run_pipeline, table_rows
from watergee.io.raster import open_raster
from watergee.sentinel2 import read_tiles

runner = CliRunner()
INPROC = "cluster: {processes: false, workers: 2}\n"
PRODUCTS = """sieve: {min_size: 30}
pipeline:
  steps:
    - clip
    - merge
    - sieve
    - extract: {class: 1}
"""


def _config(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "pipeline.yaml"
    path.write_text(INPROC + text)
    return path


def _connect(client):
    return lambda tasks: contextlib.nullcontext(client)


def _refuse(tasks):
    raise AssertionError("no step had work: no cluster should start")


def test_each_step_reads_what_the_one_before_wrote(demo_scene, tmp_path, monkeypatch):
    config = Path(__file__).parents[2] / "configs" / "demo.yaml"
    # the config names demo/data relative to the current folder: a clean clone has none
    monkeypatch.chdir(tmp_path)
    (tmp_path / "demo").mkdir()
    (tmp_path / "demo" / "data").symlink_to(demo_scene.parent)
    plan = plan_pipeline(config, demo_scene, tmp_path / "run", read_tiles=read_tiles)
    steps = {step.label: step for step in plan.steps}
    run = tmp_path / "run"
    assert steps["sample"].out == run / "samples"
    assert steps["sample"].settings.sample.work == run / "tiles"
    assert steps["train"].units[0].source == run / "samples"
    assert steps["classify-superpixel"].settings.classify.model == run / "models" / "pixelcnn"
    assert steps["merge"].settings.product.input == "clipped"
    assert steps["merge"].settings.product.work == run / "tiles"
    # after the merge the product stages read the mosaic, each what the one before made
    assert steps["sieve"].units[0].source == run / "products" / "mosaic" / "mosaic.tif"
    assert steps["sieve"].tiles == run / "products" / "mosaic.txt"
    assert steps["extract"].settings.product.input == "sieved"
    # the side branch (the known water) changes nothing the later steps read
    assert steps["merge-truth"].settings.product.work == run / "truth"
    classified = steps["evaluate"].settings.evaluate.classified
    assert classified == run / "products" / "mosaic" / "mosaic_sieved.tif"


def test_the_national_config_chains_the_product_stages_after_the_merge(demo_scene, tmp_path):
    config = Path(__file__).parents[2] / "configs" / "sentinel2-national.yaml"
    plan = plan_pipeline(config, demo_scene, tmp_path / "run", read_tiles=read_tiles)
    steps = {step.label: step for step in plan.steps}
    assert steps["classify-superpixel"].settings.classify.model == tmp_path / "run/models/resnet"
    assert steps["merge"].settings.product.mode == "superpixel"
    after_merge = ("label-transfer", "sieve", "extract", "polygonise")
    inputs = [steps[name].settings.product.input for name in after_merge]
    assert inputs == ["classes", "transferred", "sieved", "sieved"]
    assert steps["extract"].settings.extract.class_id == 5  # water, after the transfer
    # every other command reads the same file for its settings and leaves the steps alone
    result = runner.invoke(app, ["config", "--config", str(config)])
    assert result.exit_code == 0 and "min_area: 5000.0" in result.output


@pytest.mark.parametrize(
    ("steps", "message"),
    [
        ("[resample, clasify]", "pipeline.steps[2]: no stage 'clasify'"),
        ("[{sieve: {min_sise: 4}}]", "pipeline.steps[1]: unknown key 'min_sise' for sieve"),
        ("[classify]", "pipeline.steps[1] (classify): needs 'model'"),
        ("[{sieve: {connectivity: 5}}]", "pipeline.steps[1] (sieve)"),
        ("[{merge: [1]}]", "pipeline.steps[1]: the options of merge must be a mapping"),
        ("[]", "'pipeline.steps' must be a list of stages"),
    ],
)
def test_a_bad_step_fails_the_run_before_anything_runs(demo_scene, tmp_path, steps, message):
    config = _config(tmp_path, f"pipeline:\n  steps: {steps}\n")
    out = tmp_path / "run"
    with pytest.raises(ConfigError, match=re.escape(message)):
        plan_pipeline(config, demo_scene, out, read_tiles=read_tiles)
    result = runner.invoke(app, ["run", "--config", str(config), "--tiles", str(demo_scene),
                                 "--out", str(out)])  # fmt: skip
    assert result.exit_code == 2 and message in result.output
    assert not out.exists()


def test_a_run_needs_an_output_folder(demo_scene, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    config = _config(tmp_path, "pipeline:\n  steps: [resample]\n")
    result = runner.invoke(app, ["run", "--config", str(config), "--tiles", str(demo_scene)])
    assert result.exit_code == 2 and "no output folder (--out, or 'pipeline.out')" in result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pipeline.yaml"]  # nothing written


def test_the_product_chain_equals_its_commands_and_a_rerun_starts_no_cluster(
    demo_scene, tmp_path, client
):
    truth = demo_scene.parent / "truth.txt"
    config = _config(tmp_path, PRODUCTS)
    plan = plan_pipeline(config, truth, tmp_path / "run", read_tiles=read_tiles)
    report = run_pipeline(plan, _connect(client), read_tiles)
    assert report.ok, list(table_rows(report))
    rows = {row[0]: row[1:] for row in table_rows(report)}
    assert rows["mosaic"] == ["", "done", "done", "done"]
    tiles = [unit for unit in rows if unit.endswith("_water_10m")]
    assert len(tiles) == 2 and all(rows[unit] == ["done", "", "", ""] for unit in tiles)
    water = tmp_path / "run" / "products" / "mosaic" / "mosaic_class1.tif"
    sieved = water.with_name("mosaic_sieved.tif")
    record = records.read_record(water.parent / ".watergee" / "extract.json")
    assert [entry["path"] for entry in record["inputs"]] == ["mosaic/mosaic_sieved.tif"]
    classes = open_raster(sieved).ReadAsArray()
    expected = np.where(classes == 255, 255, classes == 1)  # no data kept
    assert (classes == 1).any() and np.array_equal(open_raster(water).ReadAsArray(), expected)
    # the same steps as the commands --plan prints, into another folder
    alone = plan_pipeline(config, truth, tmp_path / "alone", read_tiles=read_tiles)
    for step in alone.steps:
        result = runner.invoke(app, list(step.command[1:]))
        assert result.exit_code == 0, result.output
    other = tmp_path / "alone" / "products" / "mosaic" / "mosaic_class1.tif"
    assert np.array_equal(open_raster(other).ReadAsArray(), open_raster(water).ReadAsArray())
    again = run_pipeline(plan, _refuse, read_tiles)
    assert again.ok and set(again.cells.values()) == {"skipped"}


def test_a_failed_tile_is_blocked_later_and_no_mosaic_is_made_of_the_rest(
    demo_scene, tmp_path, client
):
    broken = tmp_path / "T33XXX_20230101T000000"
    broken.mkdir()
    shutil.copy(next((demo_scene.parent / "T33UUU_20230715T101031").glob("*_B02.jp2")),
                broken / "T33XXX_20230101T000000_B02.jp2")  # fmt: skip
    tiles = tmp_path / "tiles.txt"
    sources = [tile.source for tile in read_tiles(demo_scene)]
    tiles.write_text(f"{sources[0]}\n{broken}\n{sources[1]}\n")
    config = _config(tmp_path, "pipeline:\n  steps: [resample, combine, indices, merge]\n")
    plan = plan_pipeline(config, tiles, tmp_path / "run", read_tiles=read_tiles)
    report = run_pipeline(plan, _connect(client), read_tiles)
    rows = {row[0]: row[1:] for row in table_rows(report)}
    assert rows[broken.name] == ["failed", "blocked", "blocked", ""]
    good = [unit for unit in rows if unit.startswith("T33UU")]
    assert len(good) == 2 and all(rows[u] == ["done", "done", "done", ""] for u in good), rows
    assert rows["mosaic"] == ["", "", "", "blocked"]
    assert not report.ok
    assert not (tmp_path / "run" / "products").exists()
    table = Path(report.table_file).read_text().splitlines()
    assert table[0].split("\t") == ["unit", "1:resample", "2:combine", "3:indices", "4:merge"]
    result = runner.invoke(app, ["run", "--config", str(config), "--tiles", str(tiles),
                                 "--out", str(tmp_path / "run")])  # fmt: skip
    assert result.exit_code == 1
    assert "step 2 combine: 2 to run, 1 blocked by earlier failures" in result.output
    assert "pipeline incomplete: re-run the same command to resume" in result.output


def test_plan_prints_each_step_as_its_command(demo_scene, tmp_path):
    config = _config(tmp_path, PRODUCTS)
    result = runner.invoke(app, ["run", "--config", str(config), "--plan", "--tiles",
                                 str(demo_scene), "--out", str(tmp_path / "run")])  # fmt: skip
    assert result.exit_code == 0, result.output
    lines = [shlex.split(line) for line in result.output.splitlines() if line[:1] != "#"]
    assert [line[1] for line in lines] == ["clip", "merge", "sieve", "extract"]
    assert lines[1][lines[1].index("--input") + 1] == "clipped"
    assert lines[3][lines[3].index("--tiles") + 1] == str(tmp_path / "run/products/mosaic.txt")
    assert not (tmp_path / "run").exists()


@pytest.mark.slow
def test_the_demo_config_runs_end_to_end_and_a_rerun_redoes_nothing(tmp_path, monkeypatch):
    from watergee.demo import make_demo

    config = Path(__file__).parents[2] / "configs" / "demo.yaml"
    monkeypatch.chdir(tmp_path)  # the config names demo/data and demo/run, as make demo does
    make_demo(tmp_path / "demo" / "data", size=240)
    args = ["run", "--config", str(config), "--set", "train.epochs=2",
            "--set", "cluster.processes=false"]  # fmt: skip
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    products = tmp_path / "demo" / "run" / "products"
    for path in ("mosaic/mosaic_class1.tif", "mosaic/mosaic_class1.png",
                 "evaluation/evaluation.html"):  # fmt: skip
        assert f"  {products / path}" in result.output
    report = (products / "evaluation" / "evaluation.json").read_text()
    assert '"overall_accuracy"' in report
    again = runner.invoke(app, args)
    assert again.exit_code == 0 and "pipeline complete" in again.output
    table = [line.split() for line in again.output.splitlines() if line.startswith("T33UU")]
    assert table and all(set(row[1:]) <= {"skip", "."} for row in table)


def test_a_step_whose_shared_input_is_missing_fails_its_tiles_and_the_table_is_written(
    demo_scene, tmp_path, client
):
    """The model is checked when its step starts: the steps before it stay done, the run
    ends with exit 1 and its table, never a bare error."""
    gone = tmp_path / "no-model"
    config = _config(tmp_path, f"pipeline:\n  steps: [resample, {{classify: {{model: {gone}}}}}]\n")
    plan = plan_pipeline(config, demo_scene, tmp_path / "run", read_tiles=read_tiles)
    report = run_pipeline(plan, _connect(client), read_tiles)
    header, *rows = table_rows(report)
    assert header == ["unit", "1:resample", "2:classify-pixel"]
    assert len(rows) == 2 and all(row[1:] == ["done", "failed"] for row in rows), rows
    failures = report.reports[2].failures
    assert {f.error for f in failures} == {f"{gone}: not found (classify.model)"}
    assert Path(report.table_file).exists() and not report.ok
