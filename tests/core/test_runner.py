"""The runner on an in-process Dask cluster: resume, force, failure isolation."""

import contextlib
import json
import shutil

import pytest

from tests.conftest import coded_bands, write_band_folder
from watergee.core import layout
from watergee.core.config import load_settings
from watergee.core.errors import OutputError
from watergee.core.registry import STAGES
from watergee.core.runner import execute_tile, run_stage
from watergee.core.tiles import Tile
from watergee.io.raster import open_raster, raster_grid, write_array
from watergee.sentinel2 import read_tiles


def _statuses(report):
    return {o.tile: o.status for o in report.outcomes}


def _copy_demo(demo_scene, tmp_path):
    root = tmp_path / "scene"
    shutil.copytree(demo_scene.parent, root)
    return read_tiles(root / demo_scene.name)


def test_rerun_skips_force_redoes(demo_scene, tmp_path, client, inproc_settings):
    tiles = _copy_demo(demo_scene, tmp_path)
    out = tmp_path / "work"
    stage = STAGES["resample"]
    first = run_stage(stage, tiles, inproc_settings, out, client)
    assert set(_statuses(first).values()) == {"done"} and first.ok
    outputs = sorted(out.glob("*/*.tif"))
    mtimes = [p.stat().st_mtime_ns for p in outputs]
    assert len(outputs) == 12

    again = run_stage(stage, tiles, inproc_settings, out, client)
    assert set(_statuses(again).values()) == {"skipped"}
    assert [p.stat().st_mtime_ns for p in outputs] == mtimes

    # Cluster settings are not part of the outputs' identity.
    more = load_settings(None, ["cluster.processes=false", "cluster.workers=1"])
    assert set(_statuses(run_stage(stage, tiles, more, out, client)).values()) == {"skipped"}

    forced = run_stage(stage, tiles, inproc_settings, out, client, force=True)
    assert set(_statuses(forced).values()) == {"done"}
    assert all(p.stat().st_mtime_ns != m for p, m in zip(outputs, mtimes, strict=True))


def test_a_cluster_starts_only_for_the_tiles_with_work(
    demo_scene, tmp_path, client, inproc_settings
):
    tiles = _copy_demo(demo_scene, tmp_path)
    out = tmp_path / "work"
    stage = STAGES["resample"]
    run_stage(stage, tiles, inproc_settings, out, client)
    asked = []

    @contextlib.contextmanager
    def connect(tasks):
        asked.append(tasks)
        yield client

    current = run_stage(stage, tiles, inproc_settings, out, connect)
    assert set(_statuses(current).values()) == {"skipped"} and asked == []
    (out / tiles[0].id / ".watergee" / "resample.json").unlink()
    redo = run_stage(stage, tiles, inproc_settings, out, connect)
    assert _statuses(redo)[tiles[0].id] == "done" and asked == [1]
    assert sorted(set(_statuses(redo).values())) == ["done", "skipped"]


def test_changed_settings_input_or_output_redo_only_that(
    demo_scene, tmp_path, client, inproc_settings
):
    tiles = _copy_demo(demo_scene, tmp_path)
    out = tmp_path / "work"
    stage = STAGES["resample"]
    run_stage(stage, tiles, inproc_settings, out, client)

    cubic = load_settings(None, ["cluster.processes=false", "resample.method=cubic"])
    assert set(_statuses(run_stage(stage, tiles, cubic, out, client)).values()) == {"done"}

    a, b = tiles
    layout.resampled_band(out, a, "B11").unlink()
    assert _statuses(run_stage(stage, tiles, cubic, out, client)) == {a.id: "done", b.id: "skipped"}

    b12 = next(b.source.rglob("*_B12_20m.jp2"))
    b12.write_bytes(b12.read_bytes())  # rewritten input: new mtime
    assert _statuses(run_stage(stage, tiles, cubic, out, client)) == {a.id: "skipped", b.id: "done"}


def test_bad_tiles_fail_alone_and_are_reported(tmp_path, client, inproc_settings):
    good = write_band_folder(tmp_path / "good", coded_bands(32), prefix="T33AAA_20240101T100000")
    partial = coded_bands(32)
    del partial["B8A"]
    no_b8a = write_band_folder(tmp_path / "nob8a", partial, prefix="T33BBB_20240101T100000")
    corrupt = write_band_folder(
        tmp_path / "corrupt", coded_bands(32), prefix="T33CCC_20240101T100000"
    )
    b06 = corrupt / "T33CCC_20240101T100000_B06.tif"
    b06.write_bytes(b"not a tiff at all")
    listing = tmp_path / "tiles.txt"
    listing.write_text(f"{tmp_path}/missing/T33DDD\n{no_b8a}\n{good}\n{corrupt}\n")
    tiles = read_tiles(listing)
    out = tmp_path / "work"
    seen = []
    report = run_stage(
        STAGES["resample"], tiles, inproc_settings, out, client, on_outcome=seen.append
    )

    assert [o.tile for o in report.outcomes] == [t.id for t in tiles]  # list order kept
    assert sorted(o.tile for o in seen) == sorted(t.id for t in tiles)
    status = _statuses(report)
    assert status == {
        "T33DDD": "failed",
        "T33BBB_20240101T100000": "failed",
        "T33AAA_20240101T100000": "done",
        "T33CCC_20240101T100000": "failed",
    }
    errors = {o.tile: o.error for o in report.failures}
    assert errors["T33DDD"] == f"{tmp_path}/missing/T33DDD: tile input not found"
    assert errors["T33BBB_20240101T100000"] == f"{no_b8a}: missing band(s) B8A"
    assert errors["T33CCC_20240101T100000"].startswith(f"{b06}: not a readable raster")
    assert not report.ok

    # The good tile's outputs are complete; the failures are recorded with their cause.
    good_tile = tiles[2]
    assert open_raster(layout.resampled_band(out, good_tile, "B12")).RasterXSize == 32
    record = json.loads(layout.record(out, tiles[1], "resample").read_text())
    assert record["status"] == "failed" and "B8A" in record["error"] and record["traceback"]
    run = json.loads(next(layout.runs_dir(out).glob("resample-*.json")).read_text())
    assert (run["done"], run["failed"], run["skipped"]) == (1, 3, 0)

    # Fix the bad band; only the failed tiles run again.
    b06.unlink()
    write_band_folder(corrupt, {"B06": coded_bands(32)["B06"]}, prefix="T33CCC_20240101T100000")
    again = _statuses(run_stage(STAGES["resample"], tiles, inproc_settings, out, client))
    assert again["T33AAA_20240101T100000"] == "skipped"
    assert again["T33CCC_20240101T100000"] == "done"


def test_interrupted_stage_is_not_taken_as_done(tmp_path, inproc_settings):
    """A stage that dies after writing some outputs leaves no 'done' record: it reruns."""
    source = write_band_folder(tmp_path / "t", coded_bands(32), prefix="T33AAA_20240101T100000")
    tile = Tile("T33AAA_20240101T100000", source)
    out = tmp_path / "work"
    b12 = source / "T33AAA_20240101T100000_B12.tif"
    data = open_raster(b12).ReadAsArray()
    b12.write_bytes(b"\0" * 10)  # B05..B11 are written, then B12 fails
    outcome = execute_tile(tile, STAGES["resample"], inproc_settings, out, False)
    assert outcome.status == "failed"
    assert layout.resampled_band(out, tile, "B11").exists()
    assert not layout.resampled_band(out, tile, "B12").exists()
    write_array(b12, data, raster_grid(source / "T33AAA_20240101T100000_B11.tif"))
    assert execute_tile(tile, STAGES["resample"], inproc_settings, out, False).status == "done"
    assert execute_tile(tile, STAGES["resample"], inproc_settings, out, False).status == "skipped"
    assert (open_raster(layout.resampled_band(out, tile, "B12")).ReadAsArray() > 0).all()


def test_unwritable_output_folder_stops_before_work(tmp_path, client, inproc_settings, demo_scene):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    tiles = read_tiles(demo_scene)
    with pytest.raises(OutputError, match=rf"^{blocker}/work: output folder not writable"):
        run_stage(STAGES["resample"], tiles, inproc_settings, blocker / "work", client)
