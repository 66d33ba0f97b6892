"""Downloads through a fake computePixels: every request within the documented limits, quota
and server refusals retried, bounded concurrency, and a download killed mid-run that resumes
to byte-identical files with no partial ones."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from tests.gee.fake_earthengine import FakeComputePixels, api_error, world
from watergee.core.config import GeeSettings, OutputSettings
from watergee.core.errors import WatergeeError
from watergee.gee.download import (
    BANDS,
    MAX_REQUEST_BYTES,
    VALUE_BYTES,
    cell_grids,
    download,
    split,
    transient,
    write_tile_list,
)
from watergee.gee.grid import cells_over, parse_bbox, read_grid, write_grid
from watergee.io.raster import open_raster, read_band

ROOT = Path(__file__).resolve().parents[2]
SETTINGS = GeeSettings(cell_pixels=256, concurrency=3, request_bytes=1024 * 1024, backoff=0.5)
AREA = "10.0,50.0,10.3,50.2"


def run_download(out: Path, grid: Path, fetch, settings=SETTINGS, sleep=time.sleep):
    from watergee.gee.composite import download_image
    from watergee.gee.session import offline

    with offline():
        import ee

        cells = cell_grids(read_grid(grid), settings)
        region = ee.Geometry.Rectangle([10.0, 50.0, 10.3, 50.2])
        report = download(cells, download_image(settings, region), out, settings,
                          OutputSettings(), fetch=fetch, sleep=sleep)  # fmt: skip
        write_tile_list(out, cells, report.failed)
    return report


@pytest.fixture
def grid(tmp_path):
    path = tmp_path / "grid.gpkg"
    write_grid(cells_over(parse_bbox(AREA), 0.135), path, 0.135)
    return path


def test_a_cell_is_split_into_the_fewest_blocks_that_fit_one_request():
    assert len(split(512, 10, MAX_REQUEST_BYTES)) == 1  # water_gee's Landsat cell: 10.5 MB
    blocks = split(1536, 10, MAX_REQUEST_BYTES)  # a 0.135 deg cell at about 10 m: 94 MB
    assert len(blocks) == 4 and {(b.width, b.height) for b in blocks} == {(768, 768)}
    assert all(b.width * b.height * 10 * VALUE_BYTES <= MAX_REQUEST_BYTES for b in blocks)
    edge = split(1000, 10, 1024 * 1024)  # blocks of 143: the last row and column are cut
    assert sum(b.width * b.height for b in edge) == 1000 * 1000
    assert max(b.width for b in split(70000, 1, MAX_REQUEST_BYTES)) <= 32768
    with pytest.raises(WatergeeError, match="at most 1024"):
        split(16, 1025, MAX_REQUEST_BYTES)


def test_refusals_are_classified_as_the_client_reports_them():
    import ee

    assert transient(api_error(429)) and transient(api_error(503))
    assert not transient(api_error(400))
    assert transient(ConnectionError("reset")) and not transient(ValueError("x"))
    # with the HTTP status gone, the message decides; a computation time-out is not retried
    assert transient(ee.EEException("Too many concurrent aggregations."))
    assert not transient(ee.EEException("Computation timed out."))


def _read(path):
    ds = open_raster(path)
    return np.stack([read_band(ds, i) for i in range(1, ds.RasterCount + 1)]), ds


def test_download_writes_each_cell_as_the_service_answers_it(tmp_path, grid):
    cells = cell_grids(read_grid(grid), SETTINGS)
    first = cells[0]
    # two refusals (quota, then server) on the first block of the first cell, one on another
    fake = FakeComputePixels()
    fake.refuse_cell(first, [429, 503])
    fake.refuse_cell(cells[4], [503])
    waits = []
    report = run_download(tmp_path / "out", grid, fake, sleep=waits.append)
    assert not fake.violations and fake.most_flying <= SETTINGS.concurrency
    assert fake.most_flying > 1  # requests do overlap
    assert len(report.done) == 9 and not report.failed and report.requests == 9 * 4
    assert report.retried == fake.refused == 3
    assert len(waits) == 3 and all(0.25 <= w <= 1.5 for w in waits)
    values, ds = _read(tmp_path / "out" / "features" / f"{first.id}.tif")
    assert values.shape == (8, 256, 256)
    assert ds.GetGeoTransform() == pytest.approx((first.west, first.pixel, 0, first.north, 0,
                                                  -first.pixel))  # fmt: skip
    lon = first.west + (np.arange(256) + 0.5) * first.pixel
    lat = first.north - (np.arange(256) + 0.5) * first.pixel
    lon, lat = np.meshgrid(lon, lat)
    valid = world("valid", lon, lat) > 0
    for k, band in enumerate(BANDS[:8]):
        expected = world(band, lon, lat)
        np.testing.assert_allclose(values[k][valid], expected[valid], rtol=1e-6, atol=1e-12)
        assert np.isnan(values[k][~valid]).all()
    assert ds.GetRasterBand(8).GetDescription() == "DEM/4000"
    labels, _ = _read(tmp_path / "out" / "labels" / f"{first.id}.tif")
    water = world("label", lon, lat) == 1
    np.testing.assert_array_equal(labels[0], np.where(valid, water.astype(np.uint8), 255))
    assert (~valid).any()  # the test area has no-data pixels in this cell
    listed = (tmp_path / "out" / "tiles.txt").read_text().split("\n")[1:-1]
    assert listed == [f"features/{c.id}.tif" for c in cells]


def test_a_rerun_skips_complete_cells_and_redoes_a_damaged_one(tmp_path, grid):
    out = tmp_path / "out"
    run_download(out, grid, FakeComputePixels())
    victim = sorted((out / "labels").glob("*.tif"))[2]
    victim.write_bytes(victim.read_bytes()[:-10])
    fake = FakeComputePixels()
    report = run_download(out, grid, fake)
    assert report.done == [victim.stem] and len(report.skipped) == 8
    assert fake.calls == 4


def test_a_cell_damaged_in_place_at_the_same_size_is_downloaded_again(tmp_path, grid):
    out = tmp_path / "out"
    run_download(out, grid, FakeComputePixels())
    victim = sorted((out / "features").glob("*.tif"))[1]
    data = bytearray(victim.read_bytes())
    data[len(data) // 2] ^= 0xFF
    time.sleep(0.01)
    victim.write_bytes(bytes(data))
    report = run_download(out, grid, FakeComputePixels())
    assert report.done == [victim.stem] and len(report.skipped) == 8


def test_a_cell_the_service_refuses_fails_alone(tmp_path, grid):
    cells = cell_grids(read_grid(grid), SETTINGS)
    bad = cells[3]
    fake = FakeComputePixels()
    fake.refuse_cell(bad, [400])
    report = run_download(tmp_path / "out", grid, fake)
    assert set(report.failed) == {bad.id} and "not found" in report.failed[bad.id]
    assert len(report.done) == 8
    assert not (tmp_path / "out" / "features" / f"{bad.id}.tif").exists()
    assert f"features/{bad.id}.tif" not in (tmp_path / "out" / "tiles.txt").read_text()


def test_a_download_killed_mid_run_resumes_to_identical_files(tmp_path, grid):
    clean = tmp_path / "clean"
    run_download(clean, grid, FakeComputePixels())
    out = tmp_path / "killed"
    code = ("from tests.gee.fake_earthengine import run_slowly; "
            f"run_slowly({str(out)!r}, {str(grid)!r})")  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    child = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, env=env)
    records = out / ".watergee" / "gee"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and len(list(records.glob("*.json"))) < 3:
        time.sleep(0.05)
    child.send_signal(signal.SIGKILL)
    child.wait()
    done_before = len(list(records.glob("*.json")))
    assert 3 <= done_before < 9, "the child should die part-way through"
    report = run_download(out, grid, FakeComputePixels())
    assert len(report.skipped) == done_before and len(report.done) == 9 - done_before
    for folder in ("features", "labels"):
        names = sorted(p.name for p in (out / folder).iterdir())
        assert names == sorted(p.name for p in (clean / folder).iterdir())  # no partial files
        for name in names:
            assert (out / folder / name).read_bytes() == (clean / folder / name).read_bytes()
