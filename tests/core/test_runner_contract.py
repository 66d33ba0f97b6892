"""The runner's contract: gathered files hold only tiles that ran, upstream records are
checked, records survive a moved folder, locks, partial files, GDAL environment on the worker,
Dask resources, run logs and failed-tile lists."""

import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from osgeo import gdal
from typer.testing import CliRunner

from tests.conftest import ORIGIN
from watergee.cli.main import app
from watergee.core import layout
from watergee.core.atomic import atomic_path, host_tag
from watergee.core.config import load_settings
from watergee.core.locks import tile_lock
from watergee.core.registry import STAGES
from watergee.core.runner import execute_tile, run_stage
from watergee.core.stage import Stage, StageResult
from watergee.core.tiles import Tile
from watergee.io.raster import utm_grid, write_array
from watergee.sentinel2 import read_tiles

INPROC = ["--set", "cluster.processes=false", "--workers", "2"]


def _statuses(report):
    return {o.tile: o.status for o in report.outcomes}


def _stack_tile(folder, name, bands=("B03", "B04", "B08", "B11"), value=1000):
    """A small 4-band stack as a tile of its own (the tile input is the raster)."""
    data = np.full((len(bands), 40, 40), value, np.uint16)
    data += np.arange(40, dtype=np.uint16)[None, None, :]
    path = folder / f"{name}.tif"
    write_array(path, data, utm_grid(32633, ORIGIN, 10, 40, 40), nodata=0)
    ds = gdal.Open(str(path), gdal.GA_Update)
    for i, band in enumerate(bands, start=1):
        ds.GetRasterBand(i).SetDescription(band)
    ds = None
    return Tile(name, path)


def _labels(folder):
    labels = np.where(np.arange(40)[None, :] < 20, 1, 2).repeat(40, 0).astype(np.uint8)
    path = folder / "labels.tif"
    write_array(path, labels, utm_grid(32633, ORIGIN, 10, 40, 40))
    return path


def test_manifest_holds_only_tiles_done_or_skipped_in_this_run(tmp_path, client):
    a, b = _stack_tile(tmp_path, "TA"), _stack_tile(tmp_path, "TB")
    labels = _labels(tmp_path)
    settings = load_settings(
        None, [f"sample.labels={labels}", "sample.quota=10", "cluster.processes=false"]
    )
    out = tmp_path / "samples"
    first = run_stage(STAGES["sample"], [a, b], settings, out, client)
    assert first.ok and first.finish_outputs == [str(out / "manifest.json")]
    manifest = json.loads((out / "manifest.json").read_text())
    assert set(manifest["tiles"]) == {"TA", "TB"} and manifest["failed_tiles"] == []

    b.source.write_bytes(b"broken")  # TB fails on the re-run with other settings
    reseeded = settings.model_copy(
        update={"sample": settings.sample.model_copy(update={"seed": 5})}
    )
    second = run_stage(STAGES["sample"], [a, b], reseeded, out, client)
    assert _statuses(second) == {"TA": "done", "TB": "failed"}
    manifest = json.loads((out / "manifest.json").read_text())
    assert set(manifest["tiles"]) == {"TA"} and manifest["failed_tiles"] == ["TB"]
    assert all(s.startswith("TA/") for s in manifest["shards"]["train"])
    assert manifest["seed"] == 5


def test_a_failure_while_gathering_is_exit_1_not_2(tmp_path):
    """Tiles ran; gathering their results failed: that is a failed run, not 'nothing ran'."""
    a = _stack_tile(tmp_path, "TA")
    b = _stack_tile(tmp_path, "TB", bands=("B03", "B04", "B08", "B12"))
    listing = tmp_path / "tiles.txt"
    listing.write_text(f"{a.source}\n{b.source}\n")
    args = ["sample", "-t", str(listing), "-o", str(tmp_path / "s"),
            "--labels", str(_labels(tmp_path)), "--set", "sample.quota=5",
            "--set", "sample.indices=[]", *INPROC]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 1, result.output
    assert "sample: 2 tiles: 2 done, 0 skipped, 0 failed" in result.output
    assert "sample: gathering results failed: " in result.output
    assert "differ from the other tiles'" in result.output
    report = json.loads(next((tmp_path / "s" / ".watergee" / "runs").glob("*.json")).read_text())
    assert "differ from the other tiles'" in report["finish_error"]


def test_failed_or_stale_upstream_stops_the_tile(demo_scene, tmp_path, client, inproc_settings):
    root = tmp_path / "scene"
    shutil.copytree(demo_scene.parent, root)
    tiles = read_tiles(root / demo_scene.name)
    a, b = tiles
    out = tmp_path / "work"
    assert run_stage(STAGES["resample"], tiles, inproc_settings, out, client).ok
    assert run_stage(STAGES["combine"], tiles, inproc_settings, out, client).ok

    # resample fails on A (its B05 is now corrupt); its old outputs are still there, and
    # combine's own record of A is still complete: it must not be skipped all the same.
    b05 = next(a.source.rglob("*B05*"))
    b05.write_bytes(b"corrupt")
    failed = run_stage(STAGES["resample"], tiles, inproc_settings, out, client, force=True)
    assert _statuses(failed) == {a.id: "failed", b.id: "done"}
    assert layout.resampled_band(out, a, "B06").exists()
    combined = run_stage(STAGES["combine"], tiles, inproc_settings, out, client)
    assert _statuses(combined) == {a.id: "failed", b.id: "done"}
    error = {o.tile: o.error for o in combined.failures}[a.id]
    assert error.startswith(f"{a.id}: run `watergee resample` first (its last run failed: ")
    assert f"{b05}" in error

    # Settings changed for resample but resample was not re-run: B's bands are stale, even
    # though combine's record of B is complete.
    cubic = load_settings(None, ["cluster.processes=false", "resample.method=cubic"])
    stale = run_stage(STAGES["combine"], [b], cubic, out, client)
    assert stale.failures[0].error == (
        f"{b.id}: run `watergee resample` first (its outputs were made with other settings)"
    )


def test_a_raster_tile_is_its_own_stack_whatever_combine_recorded(tmp_path, client):
    tile = _stack_tile(tmp_path, "TA")
    settings = load_settings(None, ["cluster.processes=false", "indices.indices=[MNDWI]"])
    out = tmp_path / "out"
    assert _statuses(run_stage(STAGES["combine"], [tile], settings, out, client)) == {
        "TA": "failed"
    }
    assert _statuses(run_stage(STAGES["indices"], [tile], settings, out, client)) == {"TA": "done"}


def test_inputs_from_another_place_redo_the_tile(tmp_path, client):
    """A record made from another work folder or tile source does not vouch for this run."""
    a = _stack_tile(tmp_path, "TA")
    settings = load_settings(None, ["cluster.processes=false", "indices.indices=[MNDWI]"])
    out = tmp_path / "out"
    assert _statuses(run_stage(STAGES["indices"], [a], settings, out, client)) == {"TA": "done"}
    (tmp_path / "elsewhere").mkdir()
    moved = Tile("TA", shutil.copy2(a.source, tmp_path / "elsewhere" / "TA.tif"))
    assert _statuses(run_stage(STAGES["indices"], [moved], settings, out, client)) == {"TA": "done"}
    record = json.loads(layout.record(out, moved, "indices").read_text())
    assert record["source"] == str(moved.source.resolve()) and record["work"] == "."


def test_the_product_metadata_file_is_an_input(demo_scene, tmp_path, client, inproc_settings):
    root = tmp_path / "scene"
    shutil.copytree(demo_scene.parent, root)
    safe = read_tiles(root / demo_scene.name)[1]  # the L2A .SAFE with its -1000 offset
    out = tmp_path / "work"
    assert _statuses(run_stage(STAGES["resample"], [safe], inproc_settings, out, client)) == {
        safe.id: "done"
    }
    metadata = next(safe.source.glob("MTD_MSIL2A.xml"))
    metadata.write_text(metadata.read_text().replace("-1000", "0"))
    assert _statuses(run_stage(STAGES["resample"], [safe], inproc_settings, out, client)) == {
        safe.id: "done"
    }


def test_rerunning_the_failed_list_keeps_the_other_tiles_in_the_sample_set(tmp_path, client):
    a, b = _stack_tile(tmp_path, "TA"), _stack_tile(tmp_path, "TB")
    good = b.source.read_bytes()
    b.source.write_bytes(b"broken")
    settings = load_settings(
        None, [f"sample.labels={_labels(tmp_path)}", "sample.quota=10", "cluster.processes=false"]
    )
    out = tmp_path / "samples"
    first = run_stage(STAGES["sample"], [a, b], settings, out, client)
    assert _statuses(first) == {"TA": "done", "TB": "failed"}
    b.source.write_bytes(good)
    again = run_stage(STAGES["sample"], [b], settings, out, client)  # the failed list only
    assert _statuses(again) == {"TB": "done"}
    manifest = json.loads((out / "manifest.json").read_text())
    assert set(manifest["tiles"]) == {"TA", "TB"}


def test_a_moved_or_copied_output_folder_still_skips_complete_tiles(
    demo_scene, tmp_path, client, inproc_settings
):
    tiles = read_tiles(demo_scene)
    out = tmp_path / "work"
    for name in ("resample", "combine", "indices"):
        assert run_stage(STAGES[name], tiles, inproc_settings, out, client).ok
    copied = tmp_path / "copied"
    subprocess.run(["cp", "-a", str(out), str(copied)], check=True)
    moved = tmp_path / "moved"
    out.rename(moved)
    # A copy that kept whole seconds only, as some rsync and file systems do.
    truncated = tmp_path / "truncated"
    shutil.copytree(moved, truncated)
    for path in truncated.rglob("*"):
        stat = path.stat()
        os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns // 10**9 * 10**9))
    for folder in (copied, moved, truncated):
        for name in ("resample", "combine", "indices"):
            report = run_stage(STAGES[name], tiles, inproc_settings, folder, client)
            assert set(_statuses(report).values()) == {"skipped"}, (folder.name, name)
    record = json.loads(layout.record(moved, tiles[0], "combine").read_text())
    assert record["outputs"][0]["path"] == f"{tiles[0].id}/{tiles[0].id}_S2_10band_10m.tif"
    # A changed output in the copy is still seen.
    layout.stack(copied, tiles[0]).write_bytes(b"changed")
    report = run_stage(STAGES["combine"], tiles, inproc_settings, copied, client)
    assert _statuses(report)[tiles[0].id] == "done"


def probe(tile, settings, out):
    """A stage that records where and how it ran."""
    from distributed import get_worker

    target = out / tile.id / "probe.json"
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        worker = get_worker().address
    except ValueError:
        worker = None
    facts = {
        "cache": gdal.GetCacheMax(),
        "threads": gdal.GetConfigOption("GDAL_NUM_THREADS"),
        "worker": worker,
    }
    target.write_text(json.dumps(facts))
    if tile.id == "bad":
        raise ValueError("this tile is bad")
    return StageResult([], [target])


PROBE = Stage("probe", "tests.core.test_runner_contract:probe", ("output",), "test probe",
              resources={"GPU": 1})  # fmt: skip


def test_gdal_settings_apply_inside_the_task(tmp_path):
    settings = load_settings(None, ["cluster.gdal_cache_mb=48", "output.threads=3"])
    tile = Tile("t1", tmp_path)
    assert execute_tile(tile, PROBE, settings, tmp_path / "out", False).status == "done"
    facts = json.loads((tmp_path / "out" / "t1" / "probe.json").read_text())
    assert facts["cache"] == 48 * 2**20 and facts["threads"] == "3"
    assert gdal.GetConfigOption("GDAL_NUM_THREADS") is None  # per thread, restored
    gdal.SetCacheMax(256 * 2**20)


def test_gpu_stages_ask_for_gpu_workers_only_where_there_are_some(tmp_path):
    from distributed import Client, LocalCluster

    tiles = [Tile(f"t{i}", tmp_path) for i in range(4)]
    settings = load_settings(None, [])
    with (
        LocalCluster(n_workers=0, processes=False, dashboard_address=":0") as cluster,
        Client(cluster) as client,
    ):
        cluster.scale(0)
        from distributed import Worker

        async def start():
            return (
                await Worker(
                    cluster.scheduler.address, resources={"GPU": 1}, nthreads=1, dashboard=False
                ),
                await Worker(cluster.scheduler.address, nthreads=1, dashboard=False),
            )

        gpu, cpu = client.sync(start)
        try:
            report = run_stage(PROBE, tiles, settings, tmp_path / "gpu", client)
            assert report.ok
            used = {json.loads((tmp_path / "gpu" / t.id / "probe.json").read_text())["worker"]
                    for t in tiles}  # fmt: skip
            assert used == {gpu.address}
        finally:
            client.sync(gpu.close)
            client.sync(cpu.close)


def test_run_log_and_failed_list(tmp_path, client):
    tiles = [Tile("good", tmp_path / "g"), Tile("bad", tmp_path / "b")]
    settings = load_settings(None, [])
    out = tmp_path / "out"
    report = run_stage(PROBE, tiles, settings, out, client)
    assert _statuses(report) == {"good": "done", "bad": "failed"}
    text = Path(report.log_file).read_text()
    assert "good probe done" in text and "bad probe failed" in text
    assert "ValueError: this tile is bad" in text and "Traceback" in text
    assert "INFO watergee.core.runner: good: done in" in text
    listed = Path(report.failed_list).read_text().splitlines()
    assert listed[1:] == [str((tmp_path / "b").resolve())]
    assert report.failed_list.endswith("-failed.txt")
    assert Path(report.failed_list).parent == layout.runs_dir(out)


def slow_probe(tile, settings, out):
    time.sleep(1.0)
    return probe(tile, settings, out)


SLOW = Stage("slow", "tests.core.test_runner_contract:slow_probe", ("output",), "slow probe")


def test_a_live_lock_makes_the_second_run_wait_then_skip(tmp_path):
    tile = Tile("t1", tmp_path)
    settings = load_settings(None, [])
    out = tmp_path / "out"
    outcomes = []

    def run():
        outcomes.append(execute_tile(tile, SLOW, settings, out, False, run_id=secrets.token_hex(2)))

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
        time.sleep(0.2)
    for thread in threads:
        thread.join(30)
    assert sorted(o.status for o in outcomes) == ["done", "skipped"]
    waited = next(o for o in outcomes if o.status == "skipped")
    assert any("waiting for another run on this tile" in line for line in waited.log)
    assert not layout.lock(out, tile, "slow").exists()


def test_an_interrupted_run_stops_waiting_for_locks(tmp_path):
    from watergee.core.runner import INTERRUPTED

    tile = Tile("t1", tmp_path)
    out = tmp_path / "out"
    outcome = {}
    with tile_lock(layout.lock(out, tile, "slow"), "other-run"):
        waiter = threading.Thread(target=lambda: outcome.update(
            o=execute_tile(tile, SLOW, load_settings(None, []), out, False)))  # fmt: skip
        waiter.start()
        time.sleep(0.6)
        INTERRUPTED.set()
        waiter.join(5)
        INTERRUPTED.clear()
    assert not waiter.is_alive() and outcome["o"].status == "not started"
    assert not layout.record(out, tile, "slow").exists()  # nothing recorded as failed


def test_a_dead_process_lock_is_taken_over(tmp_path, demo_scene, inproc_settings):
    tile = read_tiles(demo_scene)[0]
    out = tmp_path / "work"
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    lock = layout.lock(out, tile, "resample")
    lock.parent.mkdir(parents=True)
    lock.write_text(json.dumps({"pid": int(dead.stdout), "host": socket.gethostname(), "run": "x"}))
    assert execute_tile(tile, STAGES["resample"], inproc_settings, out, False).status == "done"


def test_partial_files_of_live_writers_are_left_alone(tmp_path):
    final = tmp_path / "x.tif"
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    live = tmp_path / f"x.partial-{host_tag()}-{os.getpid()}-otherrun-abc123.tif"
    orphan = tmp_path / f"x.partial-{host_tag()}-{int(dead.stdout)}-oldrun-abc123.tif"
    for path in (live, orphan):
        path.write_bytes(b"partial")
    with atomic_path(final) as tmp:
        tmp.write_bytes(b"complete")
        (tmp.parent / f"{tmp.stem}.pre-cog{tmp.suffix}").write_bytes(b"scratch")
    assert final.read_bytes() == b"complete"
    assert live.exists() and not orphan.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([final.name, live.name])

    # A failed write leaves neither its partial nor its scratch files.
    with pytest.raises(RuntimeError), atomic_path(tmp_path / "y.tif") as tmp:
        tmp.write_bytes(b"half")
        (tmp.parent / f"{tmp.stem}.pre-cog{tmp.suffix}").write_bytes(b"scratch")
        raise RuntimeError("disk full")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([final.name, live.name])
