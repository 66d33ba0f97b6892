"""Label-noise correction on a scene with known water and injected label noise."""

import json
import re

import numpy as np
import pytest
from scipy import ndimage

from watergee.core import layout
from watergee.core.config import load_settings
from watergee.core.errors import TileInputError
from watergee.demo import COVERS, cover_map
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
        f"denoise.labels={labels}", "denoise.method=water_gee", "denoise.rounds=2",
        "denoise.max_samples=2500", "output.window=128",
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


@pytest.mark.parametrize("method", ["nir_split", "water_gee"])
def test_elevation_cut_off(noisy_scene, tmp_path, method):
    tile, root, labels, truth, _ = noisy_scene
    dem = np.zeros(truth.shape, np.float32)
    dem[:, 120:] = 3000.0  # the eastern half is high mountains
    dem_path = tmp_path / "dem.tif"
    write_array(dem_path, dem, raster_grid(labels))
    out = tmp_path / "out"
    settings = load_settings(
        None,
        [
            f"denoise.labels={labels}",
            f"denoise.work={root}",
            f"denoise.dem={dem_path}",
            "denoise.max_elevation=2000",
            f"denoise.method={method}",
            "denoise.rounds=1",
            "denoise.max_samples=1000",
            "denoise.epochs=5",
        ],
    )  # fmt: skip  (rounds and epochs: water_gee's)
    result = denoise(tile, settings, out)
    corrected = open_raster(result.outputs[0]).ReadAsArray()
    assert not (corrected[:, 125:-5] == 1).any()
    assert (corrected[:, 5:115] == 1).any()
    with pytest.raises(TileInputError, match=r"max_elevation needs denoise\.dem"):
        denoise(tile, load_settings(None, [f"denoise.labels={labels}", f"denoise.work={root}",
                                           "denoise.max_elevation=10"]), out)  # fmt: skip


# The NIR split (the default) against labels with systematic errors of known extent.


@pytest.fixture(scope="module")
def covers(demo_scene, noisy_scene):
    """The demo tile's land covers, on the grid of its truth."""
    cover = cover_map(240, 7)  # the first demo tile's size and seed
    assert ((cover == COVERS.index("water")) == noisy_scene[3]).all()
    return cover


def _correct(noisy_scene, tmp_path, name, labels, *overrides):
    tile, root = noisy_scene[:2]
    path = tmp_path / f"{name}.tif"
    write_array(path, labels.astype(np.uint8), raster_grid(noisy_scene[2]))
    settings = load_settings(None, [f"denoise.labels={path}", f"denoise.work={root}", *overrides])
    result = denoise(tile, settings, tmp_path / name)
    corrected = open_raster(result.outputs[0]).ReadAsArray()
    report = json.loads(layout.denoise_report(tmp_path / name, tile).read_text())
    return corrected, report


def test_a_whole_land_cover_labelled_water_is_removed(noisy_scene, covers, tmp_path):
    truth = noisy_scene[3]
    forest = covers == COVERS.index("forest")
    corrected, report = _correct(noisy_scene, tmp_path, "forest", truth | forest)
    usable = corrected != 255
    assert report["method"] == "nir_split" and report["nir_split"]["applied"]
    assert report["nir_split"]["channel"] == "B08"
    assert (corrected[forest & usable] == 1).mean() < 0.01
    assert (corrected[truth & usable] == 1).mean() > 0.98
    # One pixel needs no 7 x 7 patch: only the LINE filter's two pixels of context are short.
    assert usable[2:-2, 2:-2].all() and not usable[:2].any()


def test_a_water_body_missing_from_the_labels_is_found(noisy_scene, tmp_path):
    truth = noisy_scene[3]
    bodies, count = ndimage.label(truth)
    largest = bodies == 1 + np.argmax(ndimage.sum(truth, bodies, range(1, count + 1)))
    assert largest.sum() > 0.4 * truth.sum()  # the lake
    corrected, report = _correct(noisy_scene, tmp_path, "lake", truth & ~largest)
    usable = corrected != 255
    assert not report["nir_split"]["applied"]  # the labelled water is clean: nothing dropped
    assert (corrected[largest & usable] == 1).mean() > 0.95
    assert (corrected[~truth & usable] == 1).mean() < 0.002
    none, _ = _correct(
        noisy_scene, tmp_path, "kept", truth & ~largest, "denoise.extend_quantile=null"
    )
    assert ((none == 1) == (truth & ~largest))[usable].all()


def test_scattered_errors_are_corrected(noisy_scene, tmp_path):
    truth = noisy_scene[3]
    flipped = truth ^ (np.random.default_rng(3).random(truth.shape) < 0.03)
    corrected, _ = _correct(noisy_scene, tmp_path, "flips", flipped)
    usable = corrected != 255
    assert agreement(flipped & usable, truth & usable) < 0.8
    assert agreement((corrected == 1) & usable, truth & usable) > 0.97


def test_the_injected_noise_scene_is_corrected_beyond_the_self_training_figure(
    noisy_scene, tmp_path
):
    """water_gee reaches IoU 0.93 on this kind of scene (benchmarks/denoise_havel.py)."""
    _, _, _, truth, noisy = noisy_scene
    first, report = _correct(noisy_scene, tmp_path, "noisy", noisy)
    usable = first != 255
    assert agreement((first == 1) & usable, truth & usable) > 0.95
    again, _ = _correct(noisy_scene, tmp_path, "again", noisy)
    assert (again == first).all()  # the same seed draws the same samples
    assert report["removed"] > 0 and report["added"] > 0


def test_clean_labels_stay_as_they_are(noisy_scene, tmp_path):
    truth = noisy_scene[3]
    corrected, report = _correct(noisy_scene, tmp_path, "clean", truth)
    usable = corrected != 255
    assert not report["nir_split"]["applied"]
    assert ((corrected == 1) == truth)[usable].mean() > 0.999


def test_the_split_needs_an_infrared_band_and_enough_water(noisy_scene, tmp_path):
    truth = noisy_scene[3]
    stack = re.escape(str(layout.stack(noisy_scene[1], noisy_scene[0])))
    with pytest.raises(TileInputError, match=stack + r": denoise\.method nir_split: no near or "):
        _correct(noisy_scene, tmp_path, "visible", truth, "denoise.bands=[B02,B03,B04]",
                 "denoise.indices=[]")  # fmt: skip
    few = np.zeros_like(truth)
    few[100:105, 100:105] = True
    corrected, report = _correct(noisy_scene, tmp_path, "few", few)
    assert "too few to model" in report["stopped"]
    assert ((corrected == 1) == few)[corrected != 255].all()
    dem_path = tmp_path / "dem.tif"
    dem = np.zeros(truth.shape, np.float32)
    dem[:, 103:] = 3000.0
    write_array(dem_path, dem, raster_grid(noisy_scene[2]))
    high, _ = _correct(noisy_scene, tmp_path, "few-high", few, f"denoise.dem={dem_path}",
                       "denoise.max_elevation=2000")  # fmt: skip
    assert (high[100:105, 100:103] == 1).all() and not (high[100:105, 103:105] == 1).any()
