"""A stage re-run over many tiles whose outputs are all current, as a user runs it.

Measured side by side in one run on this machine: the first run of `watergee extract` over N
small class-map tiles (a local cluster starts, every tile is written), the no-op re-run (records
read in the driver, no cluster), and the floor of any command (`watergee --version`: Python
and the command line starting). Prints the seconds of each and the re-run's excess over the
floor per tile.

    python benchmarks/noop_rerun.py [--tiles 1000]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def write_tiles(folder: Path, count: int) -> Path:
    from watergee.io.raster import utm_grid, write_array

    rng = np.random.default_rng(0)
    lines = []
    for k in range(count):
        path = folder / f"tile{k:05d}.tif"
        data = rng.integers(1, 4, (16, 16), dtype=np.uint8)
        write_array(path, data, utm_grid(32633, (300000 + 160 * k, 5850000), 10, 16, 16))
        lines.append(path.name)
    listing = folder / "tiles.txt"
    listing.write_text("\n".join(lines) + "\n")
    return listing


def timed(*args: str) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "watergee.cli.main", *args], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiles", type=int, default=1000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        listing = write_tiles(root, args.tiles)
        command = ["-q", "extract", "--tiles", str(listing), "--out", str(root / "out"),
                   "--class", "1"]  # fmt: skip
        first = timed(*command)
        again = min(timed(*command) for _ in range(3))
        floor = min(timed("--version") for _ in range(3))
    print(f"tiles: {args.tiles}")
    print(f"first run (cluster, every tile written): {first:.2f} s")
    print(f"no-op re-run (records only, no cluster): {again:.2f} s")
    print(f"floor (watergee --version):             {floor:.2f} s")
    print(f"re-run over the floor: {1000 * (again - floor) / args.tiles:.2f} ms per tile; "
          f"re-run / first run: {again / first:.3f}")  # fmt: skip


if __name__ == "__main__":
    main()
