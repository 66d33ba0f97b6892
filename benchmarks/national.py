"""A country-sized case: watergee's product chain against the plain GDAL commands.

Synthesises classified Sentinel-2 tiles with the real MGRS geometry (109.8 km squares, 9.8 km
overlaps) in two UTM zones on either side of 12 E (zone 32 columns P Q, zone 33 columns T U,
rows 5800-6200 km), then runs, each as its own process, timed, with its peak RSS (the largest
sum of resident memory over the process and its children, sampled every 50 ms, or the
process's own high-water mark if larger):

    step        watergee                              GDAL command line
    clip        clip --tiles (MGRS owner rule)        gdal_translate -projwin <square> per tile
    merge       merge --input clipped (EPSG:3035 COG) gdalwarp -t_srs EPSG:3035 -tap -of COG
    aoi         clip --rule none --aoi boundary       gdalwarp -cutline -crop_to_cutline
    extract     extract --class 1                     gdal_calc.py "A==1"
    sieve       sieve --min-size 64 --connectivity 8  gdal_sieve.py -st 64 -8
    as GeoTIFF  the same, no overviews, uncompressed  the sieve row's gdal_sieve.py runs
    as COG      the sieve row's watergee runs         gdal_sieve.py, then gdal_translate -of COG
    polygonise  polygonise --class 1                  gdal_polygonize.py -8

and compares the results where both compute the same thing. watergee runs on a local cluster of
threads in one process (`cluster.processes: false`), so its RSS is the whole run's.

    python benchmarks/national.py --tiles 16 [--pixel 10] [--folder /tmp/national] [--runs 3]

With --runs N each step runs N times on each side, alternating, and the fastest time of each
side is kept: this shared machine's speed varies by a third from minute to minute.

`--pixel 40` keeps the geometry and makes every tile 2745 px a side (1/16 of the pixels): a
quick rehearsal of the same chain.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from osgeo import gdal, ogr, osr

gdal.UseExceptions()

#: 16 tiles: zone 32 columns P, Q and zone 33 columns T, U over the same four rows of 100 km
#: (northing 5800-6200 km; row letters differ between odd and even zones).
ZONE32 = [f"T32U{c}{r}" for r in "DEFG" for c in "PQ"]
ZONE33 = [f"T33U{c}{r}" for r in "UVAB" for c in "TU"]
#: The 4-tile case: two rows of the zone-32 and zone-33 columns nearest 12 E on their own side
#: (between them lies a sliver owned by the absent tiles T32UQ* and T33UT*).
FOUR = ["T32UPD", "T32UPE", "T33UUU", "T33UUV"]
BIN = Path(sys.executable).parent


def tiles_for(count: int) -> list[str]:
    if count == 4:
        return FOUR
    if count == 16:
        return ZONE32 + ZONE33
    raise SystemExit("--tiles must be 4 or 16")


def write_tile(path: Path, name: str, pixel: float, seed: int) -> None:
    """Class codes 1-4 in blocks of 32 px, with 1 % of pixels flipped to another class (the
    speckle that sieve removes); written row band by row band, never whole."""
    from watergee import mgrs

    square = mgrs.parse(name)
    left, _, right, top = square.tile_bounds
    size = round((right - left) / pixel)
    srs = osr.SpatialReference()
    srs.ImportFromEPSG(square.epsg)
    ds = gdal.GetDriverByName("GTiff").Create(
        str(path),
        size,
        size,
        1,
        gdal.GDT_Byte,
        ["TILED=YES", "COMPRESS=DEFLATE", "BIGTIFF=IF_SAFER"],
    )
    ds.SetGeoTransform((left, pixel, 0, top, 0, -pixel))
    ds.SetProjection(srs.ExportToWkt())
    band = ds.GetRasterBand(1)
    band.SetNoDataValue(255)
    band.SetMetadata(
        {"CLASS_1": "water", "CLASS_2": "forest", "CLASS_3": "crops", "CLASS_4": "built-up"}
    )
    rng = np.random.default_rng(seed)
    block = 32
    coarse = rng.integers(1, 5, (-(-size // block), -(-size // block)), dtype=np.uint8)
    rows = 1024
    for row in range(0, size, rows):
        height = min(rows, size - row)
        lines = np.repeat(coarse[row // block : -(-(row + height) // block)], block, axis=0)
        lines = np.repeat(lines, block, axis=1)[row % block : row % block + height, :size]
        flip = rng.random(lines.shape) < 0.01
        lines = np.where(flip, rng.integers(1, 5, lines.shape, dtype=np.uint8), lines)
        band.WriteArray(lines, 0, row)
    ds = None


def write_boundary(path: Path, names: list[str]) -> None:
    """A 'country': an ellipse in longitude/latitude inside the tiles' extent."""
    from watergee import mgrs

    lonlat = osr.SpatialReference()
    lonlat.ImportFromEPSG(4326)
    lonlat.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    corners = []
    for name in names:
        square = mgrs.parse(name)
        utm = osr.SpatialReference()
        utm.ImportFromEPSG(square.epsg)
        utm.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
        to_lonlat = osr.CoordinateTransformation(utm, lonlat)
        west, south, east, north = square.bounds
        corners += [
            to_lonlat.TransformPoint(x, y)[:2] for x in (west, east) for y in (south, north)
        ]
    lons, lats = np.array(corners).T
    cx, cy = (lons.min() + lons.max()) / 2, (lats.min() + lats.max()) / 2
    rx, ry = 0.42 * (lons.max() - lons.min()), 0.42 * (lats.max() - lats.min())
    angles = np.linspace(0, 2 * np.pi, 721)
    ring = ", ".join(f"{cx + rx * np.cos(a)} {cy + ry * np.sin(a)}" for a in angles)
    ds = ogr.GetDriverByName("GPKG").CreateDataSource(str(path))
    layer = ds.CreateLayer("country", lonlat, ogr.wkbPolygon)
    feature = ogr.Feature(layer.GetLayerDefn())
    feature.SetGeometry(ogr.CreateGeometryFromWkt(f"POLYGON (({ring}))"))
    layer.CreateFeature(feature)
    ds = None


def _tree(pid: int) -> list[int]:
    """The process and its descendants."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(parent, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo += children.get(current, [])
    return found


def _memory_kib(pid: int, key: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def measure(command: list[str], log: Path) -> tuple[float, float]:
    """(seconds, peak RSS in GiB) of one command and its children."""
    start = time.perf_counter()
    peak = 0
    with log.open("a") as out:
        out.write("$ " + " ".join(command) + "\n")
        out.flush()
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
        while process.poll() is None:
            total = sum(_memory_kib(p, "VmRSS:") for p in _tree(process.pid))
            peak = max(peak, total, _memory_kib(process.pid, "VmHWM:"))
            time.sleep(0.05)
    seconds = time.perf_counter() - start
    if process.returncode:
        raise SystemExit(f"failed ({process.returncode}): {' '.join(command)}; see {log}")
    return seconds, peak / 2**20


def measure_all(commands: list[list[str]], log: Path) -> tuple[float, float]:
    """Commands run one after the other: total time, largest peak."""
    results = [measure(c, log) for c in commands]
    return sum(r[0] for r in results), max(r[1] for r in results)


def same_pixels(a: Path, b: Path, where_a_has_data: bool = False) -> str:
    """The share of equal pixels over the two rasters' common extent (same CRS and pixel);
    optionally only where `a` has data (the GDAL crop knows no zone rule)."""
    da, db = gdal.Open(str(a)), gdal.Open(str(b))
    ta, tb = da.GetGeoTransform(), db.GetGeoTransform()
    if abs(ta[1] - tb[1]) > 1e-9:
        return "different pixel sizes"
    x0, y0 = max(ta[0], tb[0]), min(ta[3], tb[3])
    x1 = min(ta[0] + ta[1] * da.RasterXSize, tb[0] + tb[1] * db.RasterXSize)
    y1 = max(ta[3] + ta[5] * da.RasterYSize, tb[3] + tb[5] * db.RasterYSize)
    width, height = round((x1 - x0) / ta[1]), round((y0 - y1) / ta[1])
    oa = (round((x0 - ta[0]) / ta[1]), round((ta[3] - y0) / ta[1]))
    ob = (round((x0 - tb[0]) / tb[1]), round((tb[3] - y0) / tb[1]))
    equal = total = 0
    for row in range(0, height, 2048):
        h = min(2048, height - row)
        pa = da.GetRasterBand(1).ReadAsArray(oa[0], oa[1] + row, width, h)
        pb = db.GetRasterBand(1).ReadAsArray(ob[0], ob[1] + row, width, h)
        keep = pa != 255 if where_a_has_data else np.ones(pa.shape, bool)
        equal += int((pa == pb)[keep].sum())
        total += int(keep.sum())
    what = " where watergee has data" if where_a_has_data else ""
    return f"{100 * equal / max(total, 1):.4f} % of {total / 1e6:,.1f} Mpx equal{what}"


def polygon_summary(path: Path, field: str, code: int) -> tuple[int, float]:
    ds = ogr.Open(str(path))
    layer = ds.GetLayer(0)
    layer.SetAttributeFilter(f'"{field}" = {code}')
    count, area = 0, 0.0
    for feature in layer:
        count += 1
        area += feature.GetGeometryRef().GetArea()
    return count, area


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiles", type=int, default=16, choices=(4, 16))
    parser.add_argument("--pixel", type=float, default=10.0, help="10: real 10980 px tiles")
    parser.add_argument("--folder", type=Path, default=Path("/tmp/watergee-national"))
    parser.add_argument("--keep", action="store_true", help="keep the folder afterwards")
    parser.add_argument(
        "--runs", type=int, default=1, help="run each side N times, alternating; keep the fastest"
    )
    args = parser.parse_args()
    names = tiles_for(args.tiles)
    root = args.folder / f"{args.tiles}-tiles-{args.pixel:g}m"
    if root.exists():
        shutil.rmtree(root)
    (root / "tiles").mkdir(parents=True)
    log = root / "commands.log"
    start = time.perf_counter()
    for k, name in enumerate(names):
        write_tile(root / "tiles" / f"{name}_20230715T101031.tif", name, args.pixel, k)
    tile_paths = sorted((root / "tiles").glob("*.tif"))
    (root / "tiles.txt").write_text("".join(f"{p}\n" for p in tile_paths))
    write_boundary(root / "country.gpkg", names)
    size = gdal.Open(str(tile_paths[0])).RasterXSize
    print(
        f"{len(names)} tiles of {size} x {size} px at {args.pixel:g} m "
        f"({len(names) * size * size / 1e9:.2f} Gpx) written in "
        f"{time.perf_counter() - start:.0f} s; GDAL {gdal.__version__}, "
        f"{os.cpu_count()} CPUs"
    )

    work, products, gd = root / "work", root / "products", root / "gdal"
    gd.mkdir()
    mosaic = products / "mosaic"
    mosaic_list = root / "mosaic.txt"
    mosaic_list.write_text(f"{mosaic / 'mosaic.tif'}\n")
    q = shlex.quote
    co = "-co TILED=YES -co COMPRESS=DEFLATE -co BIGTIFF=IF_SAFER"
    cache = "--config GDAL_CACHEMAX 256"
    pixel = f"{args.pixel:g}"
    # the tiles cut to what they own are intermediates (ZSTD by default): DEFLATE here, as
    # GDAL's side writes them
    settings = (
        "--set cluster.processes=false --workers 2 --set cluster.gdal_cache_mb=256 "
        "--set output.intermediate_compress=DEFLATE"
    )

    def ours(text: str) -> list[str]:
        return shlex.split(f"{q(str(BIN / 'watergee'))} -q {text} {settings} --force")

    def tool(text: str) -> list[str]:
        return shlex.split(text)

    def util(name: str, text: str) -> list[str]:  # GDAL's Python utilities, this GDAL
        python = q(str(BIN / "python"))
        return shlex.split(f"env GDAL_CACHEMAX=256 {python} -m osgeo_utils.{name} {text}")

    rows = []

    def timed(command, clear: list[Path]):
        """A command's (seconds, GiB) after its outputs in `clear` are removed; a pair already
        measured is taken as it is."""
        if isinstance(command, tuple):
            return command
        for path in clear:
            path.unlink(missing_ok=True)
        return measure_all(command, log) if isinstance(command[0], list) else measure(command, log)

    def fastest(results: list[tuple[float, float]]) -> tuple[float, float]:
        return min(r[0] for r in results), max(r[1] for r in results)

    def step(name, mine, theirs, compare=None, clear=()):
        """Both sides `args.runs` times, alternating (GDAL's outputs `clear` removed before
        each of its runs, watergee's redone with --force): the fastest time, the largest peak."""
        runs = [(timed(mine, []), timed(theirs, list(clear))) for _ in range(args.runs)]
        a, b = fastest([r[0] for r in runs]), fastest([r[1] for r in runs])
        rows.append((name, a, b, compare() if compare else ""))
        print(
            f"{name:<11} watergee {a[0]:7.1f} s {a[1]:5.2f} GiB | GDAL {b[0]:7.1f} s "
            f"{b[1]:5.2f} GiB | time x{a[0] / b[0]:.2f} | {rows[-1][3]}",
            flush=True,
        )
        return a, b

    from watergee import mgrs

    def gdal_clip(path: Path) -> list[str]:
        west, south, east, north = mgrs.parse(path.name).bounds
        target = gd / f"{path.stem}_clipped.tif"
        return tool(f"gdal_translate {cache} -q -projwin {west} {north} {east} {south} {co} "
                    f"{q(str(path))} {q(str(target))}")  # fmt: skip

    first = tile_paths[0].stem
    step("clip", ours(f"clip --tiles {q(str(root / 'tiles.txt'))} --out {q(str(work))}"),
         [gdal_clip(p) for p in tile_paths],
         lambda: same_pixels(work / first / f"{first}_clipped.tif",
                             gd / f"{first}_clipped.tif", True),
         [gd / f"{p.stem}_clipped.tif" for p in tile_paths])  # fmt: skip
    clipped = " ".join(q(str(p)) for p in sorted(gd.glob("*_clipped.tif")))
    step("merge", ours(f"merge --tiles {q(str(root / 'tiles.txt'))} --out {q(str(products))} "
                       f"--work {q(str(work))} --input clipped --set merge.resolution={pixel}"),
         tool(f"gdalwarp {cache} -q -t_srs EPSG:3035 -tr {pixel} {pixel} -tap -r near "
              "-dstnodata 255 -multi -wo NUM_THREADS=ALL_CPUS -wm 256 -of COG "
              "-co COMPRESS=DEFLATE -co BIGTIFF=IF_SAFER -co OVERVIEW_RESAMPLING=MODE "
              f"-co NUM_THREADS=ALL_CPUS {clipped} {q(str(gd / 'mosaic.tif'))}"),
         lambda: same_pixels(mosaic / "mosaic.tif", gd / "mosaic.tif", True),
         [gd / "mosaic.tif"])  # fmt: skip
    listed = f"--tiles {q(str(mosaic_list))} --out {q(str(products))}"
    country = q(str(root / "country.gpkg"))
    step("aoi", ours(f"clip {listed} --rule none --aoi {country}"),
         tool(f"gdalwarp {cache} -q -cutline {country} -crop_to_cutline -dstnodata 255 -multi "
              f"-wo NUM_THREADS=ALL_CPUS {co} {q(str(mosaic / 'mosaic.tif'))} "
              f"{q(str(gd / 'aoi.tif'))}"),
         lambda: same_pixels(mosaic / "mosaic_clipped.tif", gd / "aoi.tif"),
         [gd / "aoi.tif"])  # fmt: skip
    aoi = q(str(mosaic / "mosaic_clipped.tif"))
    step("extract", ours(f"extract {listed} --class 1 --input clipped"),
         util("gdal_calc", f"--quiet -A {aoi} --calc A==1 --NoDataValue 255 --type Byte "
              f"{co.replace('-co', '--co')} --outfile {q(str(gd / 'water.tif'))}"),
         lambda: same_pixels(mosaic / "mosaic_class1.tif", gd / "water.tif"),
         [gd / "water.tif"])  # fmt: skip
    sieve = "sieve --min-size 64 --connectivity 8 --input clipped"
    sieved = step("sieve", ours(f"{sieve} {listed}"),
                  util("gdal_sieve", f"-q -st 64 -8 -of GTiff {aoi} {q(str(gd / 'sieved.tif'))}"),
                  lambda: same_pixels(mosaic / "mosaic_sieved.tif", gd / "sieved.tif"),
                  [gd / "sieved.tif"])  # fmt: skip
    # The same sieve in gdal_sieve.py's format (no overviews, no compression), and GDAL's own
    # command line to watergee's product (its output rewritten as a COG with MODE overviews).
    # Both rows reuse the sieve row's runs of the other side; the COG row adds the fastest
    # gdal_sieve.py and the fastest gdal_translate, which may come from different runs.
    plain = root / "plain"
    plain_list = f"--tiles {q(str(mosaic_list))} --out {q(str(plain))} --work {q(str(products))}"
    step("  as GeoTIFF", ours(f"{sieve} {plain_list} --set output.overviews=none "
                              "--set output.compress=NONE"), sieved[1],
         lambda: same_pixels(plain / "mosaic" / "mosaic_sieved.tif",
                             gd / "sieved.tif"))  # fmt: skip
    to_cog = tool(f"gdal_translate {cache} -q -of COG -co COMPRESS=DEFLATE -co BIGTIFF=IF_SAFER "
                  "-co OVERVIEW_RESAMPLING=MODE -co NUM_THREADS=ALL_CPUS "
                  f"{q(str(gd / 'sieved.tif'))} {q(str(gd / 'sieved_cog.tif'))}")  # fmt: skip
    cog = fastest([timed(to_cog, [gd / "sieved_cog.tif"]) for _ in range(args.runs)])
    both = (sieved[1][0] + cog[0], max(sieved[1][1], cog[1]))
    step("  as COG", sieved[0], both,
         lambda: same_pixels(mosaic / "mosaic_sieved.tif", gd / "sieved_cog.tif"))  # fmt: skip

    def polygons() -> str:
        mine = polygon_summary(mosaic / "mosaic_polygons.gpkg", "class", 1)
        theirs = polygon_summary(gd / "polygons.gpkg", "DN", 1)
        return (f"class 1: {mine[0]:,} vs {theirs[0]:,} polygons, "
                f"{mine[1] / 1e6:,.3f} vs {theirs[1] / 1e6:,.3f} km2")  # fmt: skip

    step("polygonise", ours(f"polygonise {listed} --class 1 --input sieved"),
         util("gdal_polygonize", f"-q -8 {q(str(gd / 'sieved.tif'))} -f GPKG "
              f"{q(str(gd / 'polygons.gpkg'))} polygons DN"),
         polygons, [gd / "polygons.gpkg"])  # fmt: skip
    summary = [
        {
            "step": n,
            "watergee_s": a[0],
            "watergee_gib": a[1],
            "gdal_s": b[0],
            "gdal_gib": b[1],
            "same": s,
        }
        for n, a, b, s in rows
    ]
    (root / "summary.json").write_text(json.dumps(summary, indent=2))
    print(f"summary: {root / 'summary.json'}")
    if not args.keep:
        shutil.rmtree(root)


if __name__ == "__main__":
    main()
