"""The command line through Typer's runner, and once as a real process."""

import json
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from watergee.cli.main import app

runner = CliRunner()
INPROC = ["--set", "cluster.processes=false", "--workers", "2"]


def test_help_lists_every_stage():
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in ("resample", "combine", "indices", "info", "config"):
        assert command in result.output


def test_cli_import_pulls_in_no_heavy_library():
    code = (
        "import sys, watergee.cli.main; "
        "print(sorted(m for m in ('numpy', 'osgeo', 'dask', 'distributed', 'tensorflow', 'ee', "
        "'pydantic') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def _info_lines(output: str) -> dict[str, str]:
    return {line[:16].strip(): line[17:] for line in output.splitlines() if line[:1].isalnum()}


def test_info_reports_versions_without_starting_tensorflow():
    code = (
        "import sys; from typer.testing import CliRunner; from watergee.cli.main import app; "
        "r = CliRunner().invoke(app, ['info']); print(r.output); "
        "print('TF-LOADED' if 'tensorflow' in sys.modules else 'TF-NOT-LOADED')"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    lines = _info_lines(out.stdout)
    assert lines["GDAL"].startswith("3.")
    assert "JP2OpenJPEG" in lines["GDAL drivers"]
    assert lines["TensorFlow"].startswith("2.")
    assert lines["GPUs"].startswith("not checked")
    assert out.stdout.strip().endswith("TF-NOT-LOADED")


def test_info_gpus_asks_tensorflow():
    result = runner.invoke(app, ["info", "--gpus"])
    assert result.exit_code == 0, result.output
    gpus = _info_lines(result.output)["GPUs"]
    assert gpus == "none (CPU only)" or gpus[0].isdigit()


def test_config_prints_resolved_settings():
    result = runner.invoke(app, ["config", "--set", "resample.method=cubic"])
    assert result.exit_code == 0
    assert "  method: cubic" in result.output


def test_pipeline_runs_resumes_and_summarises(demo_scene, tmp_path):
    out = tmp_path / "work"
    for stage in ("resample", "combine", "indices"):
        result = runner.invoke(app, [stage, "--tiles", str(demo_scene), "--out", str(out), *INPROC])
        assert result.exit_code == 0, result.output
        assert f"{stage}: 2 tiles: 2 done, 0 skipped, 0 failed" in result.output
    result = runner.invoke(app, ["combine", "-t", str(demo_scene), "-o", str(out), *INPROC])
    assert "2 tiles: 0 done, 2 skipped, 0 failed" in result.output
    result = runner.invoke(
        app, ["combine", "-t", str(demo_scene), "-o", str(out), "--force", *INPROC]
    )
    assert "2 tiles: 2 done, 0 skipped, 0 failed" in result.output
    assert len(list(out.glob("*/*_indices_10m.tif"))) == 2
    assert len(list((out / ".watergee" / "settings").glob("*.yaml"))) == 1


def test_failed_tile_gives_exit_1_and_names_tile_and_cause(demo_scene, tmp_path):
    listing = tmp_path / "tiles.txt"
    listing.write_text(
        demo_scene.read_text()
        .replace("T33UUU_", f"{demo_scene.parent}/T33UUU_")
        .replace("S2B_", f"{demo_scene.parent}/S2B_")
        + "gone/T31XYZ_20240101T000000\n"
    )
    result = runner.invoke(
        app, ["resample", "-t", str(listing), "-o", str(tmp_path / "w"), *INPROC]
    )
    assert result.exit_code == 1
    assert "3 tiles: 2 done, 0 skipped, 1 failed" in result.output
    cause = f"{tmp_path}/gone/T31XYZ_20240101T000000: tile input not found"
    assert f"T31XYZ_20240101T000000  resample  {cause}" in result.output


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        ("empty", "tile list is empty"),
        ("badkey", "unknown key 'resample.metod'"),
        ("badtype", "'output.window': Input should be a valid integer"),
        ("unwritable", "output folder not writable"),
        ("nolist", "cannot read tile list"),
    ],
)
def test_bad_invocations_get_one_line_and_exit_2(setup, message, demo_scene, tmp_path):
    tiles, out, extra = demo_scene, tmp_path / "w", []
    if setup == "empty":
        tiles = tmp_path / "empty.txt"
        tiles.write_text("# no tiles\n")
    elif setup in ("badkey", "badtype"):
        config = tmp_path / "c.yaml"
        config.write_text(
            "resample:\n  metod: x\n" if setup == "badkey" else "output:\n  window: big\n"
        )
        extra = ["--config", str(config)]
    elif setup == "unwritable":
        (tmp_path / "file").write_text("")
        out = tmp_path / "file" / "w"
    elif setup == "nolist":
        tiles = tmp_path / "absent.txt"
    result = runner.invoke(app, ["resample", "-t", str(tiles), "-o", str(out), *extra, *INPROC])
    assert result.exit_code == 2
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("watergee: error: ")
    assert message in lines[0]
    where = {"empty": tiles, "nolist": tiles, "unwritable": out}.get(setup, tmp_path / "c.yaml")
    assert str(where) in lines[0]


def test_real_process_workers(demo_scene, tmp_path):
    """One run as users run it: the installed command, worker processes, batch-log progress."""
    out = tmp_path / "work"
    cmd = [sys.executable, "-m", "watergee.cli.main", "resample", "-t", str(demo_scene),
           "-o", str(out), "--workers", "2"]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr
    assert "resample: 2 tiles: 2 done, 0 skipped, 0 failed" in done.stdout
    assert "[2/2]" in done.stderr
    assert len(list(out.glob("*/*_10m.tif"))) == 12


def test_existing_scheduler_by_address(demo_scene, tmp_path, client):
    address = client.scheduler.address
    out = tmp_path / "work"
    result = runner.invoke(
        app, ["resample", "-t", str(demo_scene), "-o", str(out), "--scheduler", address]
    )
    assert result.exit_code == 0, result.output
    assert "2 tiles: 2 done" in result.output


def test_unreachable_scheduler_is_a_one_line_error(demo_scene, tmp_path):
    args = ["resample", "-t", str(demo_scene), "-o", str(tmp_path / "w"),
            "--scheduler", "tcp://127.0.0.1:9", "--set", "cluster.connect_timeout=1"]  # fmt: skip
    result = runner.invoke(app, args)
    assert result.exit_code == 2
    assert "cannot reach the Dask scheduler at tcp://127.0.0.1:9" in result.output


def test_every_registered_stage_is_a_command_and_resolves():
    from watergee.core.registry import STAGES

    listed = runner.invoke(app, ["--help"]).output
    # steps whose command is written by hand, with the options it takes in their place
    own = {"train": ["train"], "gee-download": ["gee", "download"],
           "gee-export": ["gee", "export-model"]}  # fmt: skip
    for stage in STAGES.values():
        command = own.get(stage.name, [stage.name])
        assert stage.command == (stage.name not in own)
        assert f" {command[0]} " in listed
        assert callable(stage.resolve())
        assert stage.finish is None or callable(stage.resolve_finish())
        help_text = runner.invoke(app, [*command, "--help"]).output
        for option in stage.options:
            shown = "FOLDER" if stage.source == "model" else f"--{option.name}"
            assert shown in help_text, (stage.name, option.name)


def test_sample_needs_tiles_and_validate_needs_a_sample_set(tmp_path):
    result = runner.invoke(app, ["sample", "--out", str(tmp_path)])
    assert result.exit_code == 2 and "sample needs --tiles (see" in result.output
    result = runner.invoke(app, ["sample", "validate", str(tmp_path / "none")])
    assert result.exit_code == 2
    assert f"{tmp_path}/none/manifest.json: not a readable sample-set manifest" in result.output


def test_demo_samples_through_the_cli(demo_scene, tmp_path):
    out = tmp_path / "work"
    for stage in ("resample", "combine"):
        assert (
            runner.invoke(app, [stage, "-t", str(demo_scene), "-o", str(out), *INPROC]).exit_code
            == 0
        )
    labels = demo_scene.parent / "truth"
    args = ["sample", "-t", str(demo_scene), "-o", str(tmp_path / "s"), "--work", str(out),
            "--labels", str(labels), "--set", "sample.classes={0: 2, 1: 1}", "--set",
            "sample.ignore=[]", "--set", "sample.quota=40", *INPROC]  # fmt: skip
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    report = runner.invoke(app, ["sample", "validate", str(tmp_path / "s"), "--require", "1"])
    assert report.exit_code == 0, report.output
    assert "160 samples" in report.output


def test_train_rejects_unknown_kinds_and_missing_sample_sets(tmp_path):
    result = runner.invoke(
        app, ["train", "-s", str(tmp_path), "-m", "deepnet", "-o", str(tmp_path / "m")]
    )
    assert (
        result.exit_code == 2
        and "--model deepnet: choose one of pixelcnn, dense-resnet, resnet, svm, rf"
        in result.output
    )
    result = runner.invoke(
        app, ["train", "-s", str(tmp_path), "-m", "rf", "-o", str(tmp_path / "m")]
    )
    assert result.exit_code == 2 and f"{tmp_path}/manifest.json" in result.output


def test_verbose_shows_each_tiles_log_lines_and_quiet_hides_progress(demo_scene, tmp_path):
    out = tmp_path / "work"
    for stage in ("resample", "combine"):
        assert (
            runner.invoke(app, [stage, "-t", str(demo_scene), "-o", str(out), *INPROC]).exit_code
            == 0
        )
    loud = runner.invoke(app, ["-v", "indices", "-t", str(demo_scene), "-o", str(out), *INPROC])
    assert loud.exit_code == 0, loud.output
    assert (
        "INFO watergee.tile: watergee.stages.indices: T33UUU_20230715T101031: NDWI, MNDWI"
        in loud.output
    )
    plain = runner.invoke(
        app, ["indices", "-t", str(demo_scene), "-o", str(out), "--force", *INPROC]
    )
    assert "INFO" not in plain.output and "indices [1/2]" in plain.output
    quiet = runner.invoke(app, ["-q", "indices", "-t", str(demo_scene), "-o", str(out), *INPROC])
    assert (
        quiet.output.strip()
        == "indices: 2 tiles: 0 done, 2 skipped, 0 failed in "
        + quiet.output.strip().split(" in ")[-1]
    )
    logs = [p.read_text() for p in (out / ".watergee" / "logs").glob("indices-*.log")]
    log = next(text for text in logs if "indices done" in text)
    assert "T33UUU_20230715T101031 indices done" in log and "NDWI, MNDWI, NDVI, LINE written" in log


def test_option_values_reach_the_settings_as_typed(demo_scene, tmp_path):
    """--labels 'labels #2.tif' is that file, --labels 2020 a folder named 2020: never YAML."""
    out = tmp_path / "work"
    for stage in ("resample", "combine"):
        assert (
            runner.invoke(app, [stage, "-t", str(demo_scene), "-o", str(out), *INPROC]).exit_code
            == 0
        )
    for name in ("labels #2.tif", "2020"):
        labels = tmp_path / name
        args = ["sample", "-t", str(demo_scene), "-o", str(tmp_path / "s"), "--work", str(out),
                "--labels", str(labels), *INPROC]  # fmt: skip
        result = runner.invoke(app, args)
        assert result.exit_code == 2, result.output
        assert f"{labels}: not found (sample.labels)" in result.output  # the very path given


def test_a_relative_output_folder_is_made_absolute(demo_scene, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["resample", "-t", str(demo_scene), "-o", "rel", *INPROC])
    assert result.exit_code == 0, result.output
    report = json.loads(next((tmp_path / "rel" / ".watergee" / "runs").glob("*.json")).read_text())
    assert report["log_file"].startswith(str(tmp_path / "rel"))
