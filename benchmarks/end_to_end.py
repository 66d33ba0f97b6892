"""A full Sentinel-2 tile from JPEG2000 band files to a class map, against GDAL's I/O floor.

Writes synthetic band files of SIZE x SIZE px at 10 m (four 10 m bands, six 20 m bands, JPEG2000
like real products), then times, each in a fresh process with its peak RSS (VmHWM):
- resample, combine, classify (the staged pipeline, intermediates written);
- classify with `classify.source: bands` (band files read directly, nothing intermediate), and
  on request the same without the checks on water (`--steps classify-bands-unchecked`) or with
  the network in bfloat16 (`classify-bands-bfloat16`, `classify.precision`);
- the I/O floor: GDAL alone decoding every band file once and writing a class-map-sized uint8
  Cloud Optimized GeoTIFF.
The model is the pixel CNN with random weights (speed does not depend on the weights).

    python benchmarks/end_to_end.py [--size 10980] [--keep DIR] [--steps floor,classify-bands]
        [--set output.intermediate_compress=DEFLATE]
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

CHILD = r"""
import json, sys, time
from pathlib import Path
step, tile_dir, work, model = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3]), sys.argv[4]
chosen = json.loads(sys.argv[5])  # --set KEY=VALUE
start = time.perf_counter()
if step == "floor":
    import numpy as np
    from watergee.core.config import OutputSettings
    from watergee.io.raster import BandSpec, create_geotiff, iter_windows, open_raster, raster_grid
    paths = sorted(tile_dir.glob("*.jp2"))
    for path in paths:
        ds = open_raster(path)
        for w in iter_windows(ds.RasterXSize, ds.RasterYSize, 1024):
            ds.GetRasterBand(1).ReadAsArray(w.col, w.row, w.width, w.height)
    grid = raster_grid(next(p for p in paths if p.name.endswith("_B02.jp2")))
    with create_geotiff(work / "floor.tif", grid, [BandSpec("class")], np.uint8, 255,
                        OutputSettings(), overviews=True) as writer:
        for w in iter_windows(grid.width, grid.height, 2048):
            writer.write(w, np.ones((w.height, w.width), np.uint8))
else:
    from watergee.core.config import load_settings
    from watergee.core.registry import STAGES
    from watergee.core.tiles import Tile
    tile = Tile("T33BEN_20240101T000000", tile_dir)
    extra = ["classify.source=bands"] if step.startswith("classify-bands") else []
    if step.endswith("-unchecked"):  # what the checks on water cost
        extra += ["classify.water_max_swir=null", "classify.water_max_ndvi=null"]
    if step.endswith("-bfloat16"):
        extra += ["classify.precision=bfloat16"]
    settings = load_settings(None, [f"classify.model={model}", *extra, *chosen])
    STAGES[step.split("-")[0]].resolve()(tile, settings, work)
hwm = next(l for l in open("/proc/self/status") if l.startswith("VmHWM")).split()[1]
print(json.dumps({"seconds": time.perf_counter() - start, "rss_mib": int(hwm) / 1024}))
"""


STAGED = ("resample", "combine", "classify")
STEPS = ("floor", *STAGED, "classify-bands")


def write_tile(folder: Path, size: int) -> None:
    from watergee.demo import COVERS, REFLECTANCE
    from watergee.io.raster import utm_grid, write_array

    rng = np.random.default_rng(0)
    cells = rng.integers(1, len(COVERS), size=(size // 400 + 1, size // 400 + 1))
    rows = np.arange(size)[:, None]
    cols = np.arange(size)[None, :]
    cover = cells[rows // 400, cols // 400].astype(np.int8)
    lakes = ((rows % 1800) - 900) ** 2 + ((cols % 2100) - 1000) ** 2 < 420**2
    cover[lakes] = COVERS.index("water")
    del lakes
    bands = [(b, 10) for b in ("B02", "B03", "B04", "B08")]
    bands += [(b, 20) for b in ("B05", "B06", "B07", "B8A", "B11", "B12")]
    for band, resolution in bands:
        step = resolution // 10
        table = np.array([REFLECTANCE[name][band] for name in COVERS], np.float32) * 10000
        dn = table[cover[::step, ::step]]
        dn *= 1 + 0.03 * rng.standard_normal(dn.shape, dtype=np.float32)
        n = size // step
        grid = utm_grid(32633, (399960.0, 5800020.0), resolution, n, n)
        path = folder / f"T33BEN_20240101T000000_{band}.jp2"
        write_array(path, np.clip(dn, 1, 65535).astype(np.uint16), grid)


def write_model(folder: Path) -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from watergee.core.atomic import atomic_path
    from watergee.models.artifact import ClassInfo, ModelMetadata, write_metadata
    from watergee.models.pixelcnn import build_pixelcnn
    from watergee.sentinel2 import STACK_ORDER

    model = build_pixelcnn(10, 2)
    folder.mkdir(parents=True)
    with atomic_path(folder / "model.keras") as tmp:
        model.save(tmp)
    write_metadata(
        folder,
        ModelMetadata(
            kind="pixelcnn",
            file="model.keras",
            channels=list(STACK_ORDER),
            scaling="reflectance",
            patch=7,
            receptive_field=7,
            normalization={"mean": [0.1] * 10, "std": [0.1] * 10},
            classes=[ClassInfo(id=1, name="water"), ClassInfo(id=2, name="land")],
        ),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=10980)
    parser.add_argument(
        "--keep", type=Path, help="folder for the tile and model, kept and reused between runs"
    )
    parser.add_argument("--steps", default=",".join(STEPS), help="comma-separated subset")
    parser.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", help="a setting of the steps"
    )
    args = parser.parse_args()
    steps = args.steps.split(",")
    env = {
        **os.environ,
        "GDAL_CACHEMAX": os.environ.get("GDAL_CACHEMAX", "256"),
        "TF_CPP_MIN_LOG_LEVEL": "2",
    }
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        data = args.keep or root
        tile_dir, model = data / "tile", data / "model"
        if not (data / "tile.done").exists():
            start = time.perf_counter()
            tile_dir.mkdir(parents=True, exist_ok=True)
            write_tile(tile_dir, args.size)
            write_model(model)
            (data / "tile.done").write_text(str(args.size))
            elapsed = time.perf_counter() - start
            print(f"{args.size} x {args.size} px tile written in {elapsed:.0f} s")
        results = {}
        for step in steps:
            work = root / (step if step.startswith("classify-bands") else "work")
            work.mkdir(exist_ok=True)
            command = [sys.executable, "-c", CHILD, step, str(tile_dir), str(work), str(model),
                       json.dumps(args.set)]  # fmt: skip
            done = subprocess.run(command, capture_output=True, text=True, env=env)
            if done.returncode:
                raise SystemExit(f"{step} failed:\n{done.stderr[-3000:]}")
            results[step] = json.loads(done.stdout.strip().splitlines()[-1])
            r = results[step]
            print(f"{step:<16} {r['seconds']:8.1f} s  peak RSS {r['rss_mib']:7.0f} MiB", flush=True)
        if "floor" not in results:
            return
        floor = results["floor"]["seconds"]
        mpx = args.size**2 / 1e6
        if all(s in results for s in STAGED):
            staged = sum(results[s]["seconds"] for s in STAGED)
            ratio = staged / floor
            print(
                f"staged pipeline  {staged:8.1f} s  = {ratio:5.2f} x the I/O floor ({floor:.1f} s)"
            )
        for step in ("classify-bands", "classify-bands-unchecked", "classify-bands-bfloat16"):
            if step in results:
                direct = results[step]["seconds"]
                print(
                    f"{step:<16} {direct:8.1f} s  = {direct / floor:5.2f} x the I/O floor, "
                    f"{mpx / direct:.2f} Mpx/s"
                )


if __name__ == "__main__":
    main()
