"""Peak memory and time of the superpixel stage on a full-size Sentinel-2 tile.

Writes a synthetic 3-band 10 m stack of SIZE x SIZE pixels (default 10980, one MGRS tile) with
land-cover patches and lakes, then runs the stage in a child process for each block size and
prints wall time, peak RSS and segment count side by side.

    python benchmarks/superpixel_memory.py [--size 10980] [--blocks 2048 1024]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from watergee.core.config import OutputSettings
from watergee.io.raster import BandSpec, create_geotiff, iter_windows, utm_grid

CHILD = """
import json, sys, time
from pathlib import Path
from watergee.core.config import load_settings
from watergee.stages.superpixel import superpixel
from watergee.core.tiles import Tile
start = time.perf_counter()
settings = load_settings(None, sys.argv[3:])
result = superpixel(Tile("bench", Path(sys.argv[1])), settings, Path(sys.argv[2]))
# VmHWM, unlike ru_maxrss, is not inherited across exec from the benchmark process.
hwm = next(l for l in open("/proc/self/status") if l.startswith("VmHWM")).split()[1]
print(json.dumps({"seconds": time.perf_counter() - start, "peak_rss_mib": int(hwm) / 1024,
                  "segments": result.info["segments"]}))
"""


def write_scene(path: Path, size: int) -> None:
    rng = np.random.default_rng(0)
    cells = rng.integers(0, 4, size=(size // 300 + 1, size // 300 + 1))
    colours = np.array([[900, 1400, 600], [300, 500, 400], [2500, 2200, 2000], [100, 200, 900]])
    grid = utm_grid(32633, (399960.0, 5800020.0), 10, size, size)
    specs = [BandSpec(b) for b in ("B04", "B03", "B02")]
    with create_geotiff(path, grid, specs, np.uint16, 0, OutputSettings()) as writer:
        for w in iter_windows(size, size, 2048):
            rows, cols = np.mgrid[w.row : w.row + w.height, w.col : w.col + w.width]
            cover = cells[rows // 300, cols // 300]
            lake = ((rows % 1500) - 700) ** 2 + ((cols % 1700) - 800) ** 2 < 350**2
            cover[lake] = 3
            noise = 1 + 0.05 * rng.standard_normal((1, *cover.shape))
            writer.write(w, np.moveaxis(colours[cover], -1, 0) * noise)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=10980)
    parser.add_argument("--blocks", type=int, nargs="+", default=[2048, 1024])
    parser.add_argument(
        "--gdal-cache", nargs="+", default=["256"], help="GDAL_CACHEMAX values (MB) to compare"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        scene = Path(tmp) / "scene.tif"
        start = time.perf_counter()
        write_scene(scene, args.size)
        print(f"scene {args.size} x {args.size} px written in {time.perf_counter() - start:.0f} s")
        print(f"{'block':>6} {'GDAL cache MB':>13} {'seconds':>8} {'peak RSS MiB':>13} "
              f"{'segments':>9}")  # fmt: skip
        for cache in args.gdal_cache:
            for block in args.blocks:
                out = Path(tmp) / f"out{block}-{cache}"
                done = subprocess.run(
                    [sys.executable, "-c", CHILD, str(scene), str(out),
                     f"superpixel.block={block}"],
                    capture_output=True, text=True, check=True,
                    env={**os.environ, "GDAL_CACHEMAX": cache},
                )  # fmt: skip
                r = json.loads(done.stdout.strip().splitlines()[-1])
                print(f"{block:>6} {cache:>13} {r['seconds']:>8.1f} {r['peak_rss_mib']:>13.0f} "
                      f"{r['segments']:>9}")  # fmt: skip


if __name__ == "__main__":
    main()
