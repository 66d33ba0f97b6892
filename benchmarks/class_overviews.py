"""A class map's Cloud Optimized GeoTIFF: MODE overviews computed by watergee against GDAL's.

A synthetic class map (four classes in 32 px blocks, 1 % of pixels flipped, the western fifth
no data) is written as the scratch GeoTIFF every product is rewritten from, then turned into a
COG twice in one run, with the same creation options and MODE overviews (merge's): by `to_cog`
(overview levels computed in numpy, copied by the COG driver) and by GDAL's COG driver
computing them. Printed: seconds (best of --runs), the ratio, and the share of overview pixels
that are equal (all of them when the side is a multiple of the largest factor, as the default
12288 is).

    python benchmarks/class_overviews.py [--size 12288] [--runs 2]
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
from osgeo import gdal

gdal.UseExceptions()


def write_scratch(path: Path, size: int, options: list[str]) -> None:
    ds = gdal.GetDriverByName("GTiff").Create(str(path), size, size, 1, gdal.GDT_Byte, options)
    ds.SetGeoTransform((4000000.0, 10.0, 0.0, 3000000.0, 0.0, -10.0))
    band = ds.GetRasterBand(1)
    band.SetNoDataValue(255)
    rng = np.random.default_rng(0)
    coarse = rng.integers(1, 5, (-(-size // 32), -(-size // 32)), dtype=np.uint8)
    for row in range(0, size, 1024):
        height = min(1024, size - row)
        lines = np.kron(coarse[row // 32 : -(-(row + height) // 32)], np.ones((32, 32), np.uint8))
        lines = lines[:height, :size]
        flip = rng.random(lines.shape) < 0.01
        lines = np.where(flip, rng.integers(1, 5, lines.shape, dtype=np.uint8), lines)
        lines[:, : size // 5] = 255
        band.WriteArray(lines, 0, row)
    ds = None


def equal_share(a: Path, b: Path) -> float:
    da, db = gdal.Open(str(a)), gdal.Open(str(b))
    ba, bb = da.GetRasterBand(1), db.GetRasterBand(1)
    equal = total = 0
    for i in range(min(ba.GetOverviewCount(), bb.GetOverviewCount())):
        oa, ob = ba.GetOverview(i).ReadAsArray(), bb.GetOverview(i).ReadAsArray()
        rows, cols = min(oa.shape[0], ob.shape[0]), min(oa.shape[1], ob.shape[1])
        equal += int((oa[:rows, :cols] == ob[:rows, :cols]).sum())
        total += rows * cols
    return equal / max(total, 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=12288)
    parser.add_argument("--runs", type=int, default=2)
    args = parser.parse_args()

    from watergee.core.config import OutputSettings
    from watergee.io.raster import _open_options, cog_options, scratch_options, to_cog

    settings = OutputSettings()
    root = Path(tempfile.mkdtemp(prefix="wg-class-overviews-"))
    try:
        master = root / "master.tif"
        write_scratch(master, args.size, scratch_options(settings))
        print(f"class map {args.size} x {args.size} px, GDAL {gdal.__version__}, "
              f"best of {args.runs}")  # fmt: skip
        resampling = "MODE"
        best = {"watergee": float("inf"), "GDAL": float("inf")}
        for _ in range(args.runs):
            scratch = root / "scratch.tif"
            shutil.copy(master, scratch)
            start = time.perf_counter()
            to_cog(scratch, root / "ours.tif", root / "ours.tif", settings, resampling)
            best["watergee"] = min(best["watergee"], time.perf_counter() - start)
            start = time.perf_counter()
            source = gdal.OpenEx(str(master), gdal.OF_RASTER,
                                 open_options=_open_options(master))  # fmt: skip
            gdal.Translate(str(root / "gdal.tif"), source, format="COG",
                           creationOptions=cog_options(settings, resampling))  # fmt: skip
            source = None
            best["GDAL"] = min(best["GDAL"], time.perf_counter() - start)
        share = equal_share(root / "ours.tif", root / "gdal.tif")
        print(f"{resampling:8s} watergee {best['watergee']:6.2f} s   GDAL {best['GDAL']:6.2f} s"
              f"   ratio {best['watergee'] / best['GDAL']:.2f}"
              f"   overview pixels equal {100 * share:.3f} %")  # fmt: skip
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
