"""Label-noise correction on a scene with known water and injected label noise."""

import json

import numpy as np
import pytest

from watergee.core import layout
from watergee.core.config import load_settings
from watergee.core.errors import TileInputError
from watergee.denoising import agreement, spectrally_consistent
from watergee.io.raster import open_raster, raster_grid, write_array
from watergee.sentinel2 import read_tiles
from watergee.stages.combine import combine
from watergee.stages.denoise import denoise
from watergee.stages.resample import resample


def test_spectral_consistency_counts_channels():
    features = np.array([[[0.0, 5.0]], [[0.0, 5.0]], [[0.0, 0.0]]])  # 3 channels, 1 x 2 pixels
    ok = spectrally_consistent(features, np.zeros(3), np.ones(3), 3.0, 0.5)
    assert ok.tolist() == [[True, False]]  # the second pixel is inside for 1 of 3 channels
    assert agreement(np.array([1, 1, 0], bool), np.array([1, 0, 0], bool)) == 0.5


@pytest.fixture(scope="module")
def noisy_scene(demo_scene, tmp_path_factory):
    root = tmp_path_factory.mktemp("denoise")
    tile = read_tiles(demo_scene)[0]
    settings = load_settings()
    resample(tile, settings, root)
    combine(tile, settings, root)
    truth_path = demo_scene.parent / "truth" / f"{tile.id}_water_10m.tif"
    truth = open_raster(truth_path).ReadAsArray() == 1
    rng = np.random.default_rng(5)
    noisy = truth.copy()
    rows, cols = np.nonzero(truth)
    north = rows < np.quantile(rows, 0.12)
    noisy[rows[north], cols[north]] = False  # the northern eighth of the water unmapped
    for r, c in rng.integers(10, 220, size=(6, 2)):
        noisy[r : r + 8, c : c + 8] = True  # water mapped where there is land
    noisy ^= rng.random(noisy.shape) < 0.01  # scattered errors
    labels = root / "noisy.tif"
    write_array(labels, noisy.astype(np.uint8), raster_grid(truth_path))
    return tile, root, labels, truth, noisy


@pytest.mark.slow
def test_denoise_moves_noisy_labels_towards_the_truth(noisy_scene):
    tile, root, labels, truth, noisy = noisy_scene
    settings = load_settings(None, [
        f"denoise.labels={labels}", "denoise.rounds=2", "denoise.max_samples=2500",
        "output.window=128",
    ])  # fmt: skip
    result = denoise(tile, settings, root)
    corrected = open_raster(result.outputs[0]).ReadAsArray()
    usable = corrected != 255
    before = agreement(noisy & usable, truth & usable)
    after = agreement((corrected == 1) & usable, truth & usable)
    assert before < 0.8
    assert after > 0.85 and after > before + 0.07
    report = json.loads(layout.denoise_report(root, tile).read_text())
    assert [r["round"] for r in report["rounds"]] == [1, 2]
    assert report["features"] == ["B02", "B03", "B04", "B08", "B11", "MNDWI", "LINE"]
    assert report["water_final"] == int((corrected == 1).sum())
    # The tile's border, where no 7 x 7 patch (plus the LINE filter's reach) fits, is no data.
    assert (corrected[:5] == 255).all() and (corrected[5:-5, 5:-5] != 255).all()


def test_elevation_cut_off(noisy_scene, tmp_path):
    tile, root, labels, truth, _ = noisy_scene
    dem = np.zeros(truth.shape, np.float32)
    dem[:, 120:] = 3000.0  # the eastern half is high mountains
    dem_path = tmp_path / "dem.tif"
    write_array(dem_path, dem, raster_grid(labels))
    out = tmp_path / "out"
    settings = load_settings(None, [
        f"denoise.labels={labels}", f"denoise.work={root}", f"denoise.dem={dem_path}",
        "denoise.max_elevation=2000", "denoise.rounds=1", "denoise.epochs=2",
        "denoise.max_samples=1000", "denoise.epochs=5",
    ])  # fmt: skip
    result = denoise(tile, settings, out)
    corrected = open_raster(result.outputs[0]).ReadAsArray()
    assert not (corrected[:, 125:-5] == 1).any()
    assert (corrected[:, 5:115] == 1).any()
    with pytest.raises(TileInputError, match=r"max_elevation needs denoise\.dem"):
        denoise(tile, load_settings(None, [f"denoise.labels={labels}", f"denoise.work={root}",
                                           "denoise.max_elevation=10"]), out)  # fmt: skip
