"""What overviews cost on the intermediates (`output.overviews: all` against the default).

Measured side by side in one run: the 10-band stack (`combine`) and the indices (`indices`) of
one demo tile written without overviews (a tiled GeoTIFF) and with them (a Cloud Optimized
GeoTIFF with averaged overviews): seconds (best of --runs), file size, and the ratios.

    python benchmarks/overviews.py [--size 4080] [--runs 2]
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path


def timed(runs: int, fn) -> float:
    best = float("inf")
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=4080, help="tile side, a multiple of 60")
    parser.add_argument("--runs", type=int, default=2)
    args = parser.parse_args()

    from watergee.core import layout
    from watergee.core.config import load_settings
    from watergee.core.tiles import read_tile_list
    from watergee.demo import make_demo
    from watergee.io.raster import gdal_environment, open_raster
    from watergee.stages.combine import combine
    from watergee.stages.indices import indices
    from watergee.stages.resample import resample

    root = Path(tempfile.mkdtemp(prefix="wg-overviews-"))
    try:
        tile = read_tile_list(make_demo(root / "data", size=args.size))[0]
        print(f"one demo tile, {args.size} x {args.size} px, {args.runs} runs each (best)")
        rows = []
        for setting in ("products", "all"):
            settings = load_settings(None, [f"output.overviews={setting}"])
            out = root / setting
            with gdal_environment(settings):
                resample(tile, settings, out)
                stack = timed(args.runs, lambda s=settings, o=out: combine(tile, s, o))
                index = timed(args.runs, lambda s=settings, o=out: indices(tile, s, o))
            paths = (layout.stack(out, tile), layout.indices(out, tile))
            sizes = [p.stat().st_size / 2**20 for p in paths]
            ds = open_raster(paths[0])  # kept open while its band is read
            levels = ds.GetRasterBand(1).GetOverviewCount()
            rows.append((setting, stack, index, *sizes, levels))
            print(f"  overviews={setting:8s}  stack {stack:6.2f} s {sizes[0]:8.1f} MiB "
                  f"({levels} overview levels)   "
                  f"indices {index:6.2f} s {sizes[1]:8.1f} MiB")  # fmt: skip
        (_, s0, i0, z0, y0, _), (_, s1, i1, z1, y1, _) = rows
        print(f"cost of overviews: stack time x{s1 / s0:.2f}, size x{z1 / z0:.2f}; "
              f"indices time x{i1 / i0:.2f}, size x{y1 / y0:.2f}")  # fmt: skip
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
