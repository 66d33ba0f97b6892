"""Bad input, row by row: each row makes one bad input, runs one command, and checks the exit
code, a fragment of the one-line message that names the file (key, line), and for every row
that no traceback is shown and no partial file is left; where good tiles run beside the bad
one, that they finished.

The rows share one small demo scene prepared once (stacks, a sample set, a random forest and
its class maps) and one in-process Dask cluster, so the whole table runs in well under a
minute.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from watergee.cli.main import app
from watergee.demo import make_demo
from watergee.io.raster import open_raster, utm_grid, write_array

runner = CliRunner()

GOOD = "T33UUV_20230720T101559"  # the demo's .SAFE tile: the one that must finish
BAD = "T33UUU_20230715T101031"  # the demo's band folder: copied and damaged per row


@dataclass
class Base:
    """The prepared scene every row starts from."""

    root: Path
    tiles: Path  # the demo's tile list
    folder: Path  # the band folder of BAD
    safe: Path  # the .SAFE of GOOD
    truth: Path  # label rasters per tile
    work: Path  # resample, combine, indices of both tiles
    samples: Path
    rf: Path  # a random forest model folder
    classes: Path  # its class maps of both tiles (a work folder)
    scheduler: str


@dataclass
class Case:
    """One row's own folder and the helpers that make its bad input."""

    base: Base
    tmp: Path

    @property
    def out(self) -> Path:
        return self.tmp / "out"

    def write(self, name: str, data: bytes | str) -> Path:
        path = self.tmp / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(data, str):
            data = data.encode()
        path.write_bytes(data)
        return path

    def band_folder(self) -> Path:
        """A copy of BAD's band folder, to damage."""
        copy = self.tmp / BAD
        if not copy.exists():
            shutil.copytree(self.base.folder, copy)
        return copy

    def band(self, name: str) -> Path:
        return self.band_folder() / f"{BAD}_{name}.jp2"

    def listing(self, *entries: Path | str) -> Path:
        """A tile list of `entries` followed by the good tile."""
        lines = [str(e) for e in entries] + [str(self.base.safe)]
        return self.write("list.txt", "\n".join(lines) + "\n")

    def cli(self, *args: object, cluster: bool = True) -> list[str]:
        extra = ["--scheduler", self.base.scheduler] if cluster else []
        return [str(a) for a in args] + extra

    def model_copy(self, name: str = "model") -> Path:
        copy = self.tmp / name
        shutil.copytree(self.base.rf, copy)
        return copy

    def samples_copy(self) -> Path:
        copy = self.tmp / "samples"
        shutil.copytree(self.base.samples, copy)
        return copy

    def shard(self, samples: Path) -> Path:
        return next(iter(sorted(samples.glob("*/train-*.npz"))))

    def classify(self, model: Path, tiles: Path | None = None) -> list[str]:
        return self.cli("classify", "-t", tiles or self.base.tiles, "-o", self.out,
                        "--work", self.base.work, "--model", model)  # fmt: skip

    def product(self, stage: str, *extra: object) -> list[str]:
        return self.cli(stage, "-t", self.base.tiles, "-o", self.out, "--work",
                        self.base.classes, *extra)  # fmt: skip

    def resample(self, tiles: Path, *extra: object) -> list[str]:
        return self.cli("resample", "-t", tiles, "-o", self.out, *extra)

    def sample(self, *extra: object) -> list[str]:
        return self.cli("sample", "-t", self.base.tiles, "-o", self.out, "--work", self.base.work,
                        *extra)  # fmt: skip

    def combine_after_resample(self, tiles: Path, *extra: str) -> list[str]:
        result = runner.invoke(app, self.resample(tiles, *extra))
        assert result.exit_code in (0, 1), result.output
        return self.cli("combine", "-t", tiles, "-o", self.out, *extra)

    def vector(self, name: str, field: str, points: list[tuple[float, float]], value=1) -> Path:
        from osgeo import ogr, osr

        path = self.tmp / name
        srs = osr.SpatialReference()
        srs.ImportFromEPSG(32633)
        source = ogr.GetDriverByName("GPKG").CreateDataSource(str(path))
        layer = source.CreateLayer("points", srs, ogr.wkbPoint)
        layer.CreateField(ogr.FieldDefn(field, ogr.OFTInteger))
        for x, y in points:
            feature = ogr.Feature(layer.GetLayerDefn())
            feature.SetField(0, value)
            geometry = ogr.Geometry(ogr.wkbPoint)
            geometry.AddPoint_2D(x, y)
            feature.SetGeometry(geometry)
            layer.CreateFeature(feature)
        source = None
        return path

    def tile_origin(self) -> tuple[float, float]:
        ds = open_raster(self.base.work / BAD / f"{BAD}_S2_10band_10m.tif")
        x0, _, _, y0, _, _ = ds.GetGeoTransform()
        return x0, y0


@dataclass(frozen=True)
class Row:
    id: str
    make: Callable[[Case], list[str]]
    code: int
    fragment: str  # in the message; {tmp} is the row's folder
    others: str | None = None  # the stage whose record of GOOD must say done
    check: Callable[[Case], None] | None = None  # more to assert (exit 0 rows)


def _stack_type(case: Case) -> None:
    """A Byte B02 first in the stack: the stack is still UInt16, every DN as it was."""
    from osgeo import gdal

    ds = open_raster(case.out / BAD / f"{BAD}_S2_10band_10m.tif")
    assert ds.GetRasterBand(1).DataType == gdal.GDT_UInt16
    assert (ds.GetRasterBand(1).ReadAsArray() == 200).all()
    b08 = open_raster(case.base.folder / f"{BAD}_B08.jp2").ReadAsArray()
    np.testing.assert_array_equal(ds.GetRasterBand(4).ReadAsArray(), b08)  # above 255 kept


def _record(case: Case, tile: str, stage: str) -> dict:
    return json.loads((case.out / tile / ".watergee" / f"{stage}.json").read_text())


def _invalid_counted(case: Case) -> None:
    record = _record(case, "stack", "classify-pixel")
    assert record["info"]["invalid_values"] == 3
    classes = open_raster(case.out / "stack" / "stack_classes_pixel.tif").ReadAsArray()
    assert classes[5, 5] == 255 and classes[7, 9] == 255 and classes[20, 20] != 255


def _scale_warned(case: Case) -> None:
    record = _record(case, BAD, "combine")
    assert "mis-scaled" in record["info"]["warnings"][0]


# ---------------------------------------------------------------------------------------------
# How each bad input is made.


def _bytes_b02(c: Case) -> list[str]:
    grid = open_raster(c.band("B02"))
    from watergee.io.raster import grid_of

    c.band("B02").unlink()
    write_array(c.band("B02"), np.full((grid.RasterYSize, grid.RasterXSize), 200, np.uint8),
                grid_of(grid))  # fmt: skip
    return c.combine_after_resample(c.listing(c.band_folder()))


def _float_b08(c: Case) -> list[str]:
    from watergee.io.raster import grid_of

    ds = open_raster(c.band("B08"))
    grid, data = grid_of(ds), ds.ReadAsArray().astype(np.float32)
    data[0, 0] = np.inf
    c.band("B08").unlink()
    write_array(c.band_folder() / f"{BAD}_B08.tif", data, grid)
    return c.combine_after_resample(c.listing(c.band_folder()))


def _unreferenced_b05(c: Case) -> list[str]:
    data = open_raster(c.band("B05")).ReadAsArray()
    c.band("B05").unlink()
    from osgeo import gdal

    path = c.band_folder() / f"{BAD}_B05.tif"
    ds = gdal.GetDriverByName("GTiff").Create(
        str(path), data.shape[1], data.shape[0], 1, gdal.GDT_UInt16
    )
    ds.GetRasterBand(1).WriteArray(data)
    ds = None
    return c.resample(c.listing(c.band_folder()))


def _shifted_b03(c: Case) -> list[str]:
    from watergee.io.raster import Grid, grid_of

    ds = open_raster(c.band("B03"))
    grid = grid_of(ds)
    t = list(grid.transform)
    t[0] += 30.0
    data = ds.ReadAsArray()
    c.band("B03").unlink()
    write_array(c.band("B03"), data, Grid(grid.crs_wkt, tuple(t), grid.width, grid.height))
    return c.combine_after_resample(c.listing(c.band_folder()))


def _other_crs_b05(c: Case) -> list[str]:
    from watergee.io.raster import Grid, grid_of, spatial_reference

    ds = open_raster(c.band("B05"))
    grid, data = grid_of(ds), ds.ReadAsArray()
    c.band("B05").unlink()
    wkt = spatial_reference("EPSG:32632").ExportToWkt()
    write_array(c.band("B05"), data, Grid(wkt, grid.transform, grid.width, grid.height))
    return c.resample(c.listing(c.band_folder()))


def _truncated_b08(c: Case) -> list[str]:
    data = c.band("B08").read_bytes()
    c.band("B08").write_bytes(data[: len(data) // 2])
    return c.combine_after_resample(c.listing(c.band_folder()))


def _float_stack(c: Case) -> list[str]:
    stack = open_raster(c.base.work / BAD / f"{BAD}_S2_10band_10m.tif")
    from watergee.io.raster import grid_of

    data = stack.ReadAsArray().astype(np.float32)
    data[0, 5, 5], data[3, 7, 9], data[9, 30, 40] = np.nan, np.inf, -np.inf
    path = c.tmp / "stack.tif"
    write_array(path, data, grid_of(stack))
    from osgeo import gdal

    ds = gdal.Open(str(path), gdal.GA_Update)
    for i in range(1, 11):
        band = stack.GetRasterBand(i)
        ds.GetRasterBand(i).SetDescription(band.GetDescription())
        ds.GetRasterBand(i).SetScale(band.GetScale())
        ds.GetRasterBand(i).SetOffset(band.GetOffset())
    ds = None
    return c.classify(c.base.rf, c.write("stacks.txt", f"{path}\n"))


def _eight_band_stack(c: Case) -> list[str]:
    stack = open_raster(c.base.work / BAD / f"{BAD}_S2_10band_10m.tif")
    from watergee.io.raster import grid_of

    path = c.tmp / "eight.tif"
    write_array(path, stack.ReadAsArray()[:8], grid_of(stack))
    return c.classify(c.base.rf, c.write("stacks.txt", f"{path}\n"))


def _metadata(c: Case, change: Callable[[dict], None]) -> list[str]:
    model = c.model_copy()
    data = json.loads((model / "model.json").read_text())
    change(data)
    (model / "model.json").write_text(json.dumps(data))
    return c.classify(model)


def _eight_channels(data: dict) -> None:
    data["channels"] = data["channels"][:8]


def _keras_eight(c: Case) -> list[str]:
    import keras

    model = c.model_copy()
    inputs = keras.Input((None, None, 8), name="features")
    net = keras.Model(inputs, keras.layers.Conv2D(2, 1, activation="softmax")(inputs))
    net.save(model / "model.keras")
    data = json.loads((model / "model.json").read_text())
    data.update(kind="pixelcnn", file="model.keras", receptive_field=1, patch=1)
    (model / "model.json").write_text(json.dumps(data))
    return c.classify(model)


def _keras_garbage(c: Case) -> list[str]:
    model = c.model_copy()
    (model / "model.keras").write_bytes(np.random.default_rng(0).bytes(4000))
    data = json.loads((model / "model.json").read_text())
    data.update(kind="pixelcnn", file="model.keras")
    (model / "model.json").write_text(json.dumps(data))
    return c.classify(model)


def _joblib_garbage(c: Case) -> list[str]:
    model = c.model_copy()
    name = json.loads((model / "model.json").read_text())["file"]
    (model / name).write_bytes(np.random.default_rng(0).bytes(3000))
    return c.classify(model)


def _truncated_shard(c: Case) -> list[str]:
    samples = c.samples_copy()
    shard = c.shard(samples)
    shard.write_bytes(shard.read_bytes()[: shard.stat().st_size // 2])
    return ["train", "-s", str(samples), "--model", "rf", "-o", str(c.tmp / "m")]


def _foreign_shard(c: Case) -> list[str]:
    samples = c.samples_copy()
    with open(c.shard(samples), "wb") as handle:
        np.savez(handle, foo=np.zeros(3))
    return ["train", "-s", str(samples), "--model", "rf", "-o", str(c.tmp / "m")]


def _one_class(c: Case) -> list[str]:
    samples = c.samples_copy()
    manifest = json.loads((samples / "manifest.json").read_text())
    for split in manifest["totals"]:
        manifest["totals"][split] = {k: (n if k == min(manifest["totals"][split]) else 0)
                                     for k, n in manifest["totals"][split].items()}  # fmt: skip
    (samples / "manifest.json").write_text(json.dumps(manifest))
    return ["train", "-s", str(samples), "--model", "rf", "-o", str(c.tmp / "m")]


def _train_into_model(c: Case) -> list[str]:
    return ["train", "-s", str(c.base.samples), "--model", "rf", "-o", str(c.model_copy())]


def _damaged(folder: Path, name: str, text: str) -> Path:
    (folder / name).write_text(text)
    return folder


def _train(c: Case, samples: Path) -> list[str]:
    return ["train", "-s", str(samples), "--model", "rf", "-o", str(c.tmp / "m")]


def _config(c: Case, text: bytes | str) -> list[str]:
    return c.resample(c.base.tiles, "--config", c.write("c.yaml", text))


def _faraway(c: Case) -> Path:
    """Labels in another CRS (UTM 32N) far from the tiles: never warped into code 0."""
    path = c.tmp / "faraway.tif"
    write_array(
        path, np.ones((40, 40), np.uint8), utm_grid(32632, (300000.0, 4000000.0), 10.0, 40, 40)
    )
    return path


def _labels_list_without_bad(c: Case) -> list[str]:
    good = next(c.base.truth.glob(f"{GOOD}*"))
    return c.sample("--labels", c.write("labels.txt", f"{good}\n"))


def _points_csv(c: Case, text: str) -> list[str]:
    path = c.write("points.csv", text)
    return c.sample("--set", "sample.mode=points", "--set", f"sample.points={path}",
                    "--set", "sample.required=[]")  # fmt: skip


def _footprints_without_field(c: Case) -> list[str]:
    path = c.vector("footprints.gpkg", "name", [c.tile_origin()])
    return c.product("clip", "--rule", "footprints", "--set", f"clip.footprints={path}")


def _transfer_missing_code(c: Case) -> list[str]:
    return c.product("label-transfer", "--table", c.write("t.yaml", "table: {1: 5}\n"))


def _evaluate(c: Case, reference: Path, *extra: str) -> list[str]:
    classified = next(c.base.classes.glob(f"{GOOD}/*_classes_pixel.tif"))
    return c.cli("evaluate", "--classified", classified, "--reference", reference, "-o", c.out,
                 *extra)  # fmt: skip


def _slurm_unreachable(c: Case) -> list[str]:
    return ["resample", "-t", str(c.base.tiles), "-o", str(c.out), "--cluster", "slurm",
            "--set", f"cluster.shared_directory={c.tmp / 'shared'}"]  # fmt: skip


def _set(c: Case, *pairs: str) -> list[str]:
    args = []
    for pair in pairs:
        args += ["--set", pair]
    return c.resample(c.base.tiles, *args)


def _classify_set(c: Case, pair: str) -> list[str]:
    return [*c.classify(c.base.rf), "--set", pair]


UNREADABLE = b"\x00\x01 not a raster \xff" * 50
ROWS = [
    # --- tile lists ----------------------------------------------------------------------
    Row("list-missing", lambda c: c.resample(c.tmp / "absent.txt"), 2,
        "{tmp}/absent.txt: cannot read tile list"),
    Row("list-empty", lambda c: c.resample(c.write("l.txt", "# nothing\n")), 2,
        "{tmp}/l.txt: tile list is empty"),
    Row("list-is-folder", lambda c: c.resample(c.tmp), 2, "cannot read tile list"),
    Row("list-duplicate", lambda c: c.resample(c.listing(c.base.safe)), 2,
        "line 2 names tile T33UUV_20230720T101559 again (first on line 1)"),
    Row("list-not-utf8", lambda c: c.resample(c.write("l.txt", b"# a\n# b\n# caf\xe9\nX\n")), 2,
        "{tmp}/l.txt: line 3 is not UTF-8"),
    Row("list-dotdot", lambda c: c.resample(c.write("l.txt", f"{c.base.safe}\n..\n")), 2,
        "{tmp}/l.txt: line 2: '..' is not a tile"),
    Row("list-dot", lambda c: c.resample(c.write("l.txt", ".\n")), 2,
        "{tmp}/l.txt: line 1: '.' is not a tile"),
    Row("list-slash-dotdot", lambda c: c.resample(c.write("l.txt", "a/b/../\n")), 2,
        "line 1: 'a/b/../' is not a tile"),
    Row("list-bom", lambda c: c.resample(c.write("l.txt", f"\ufeff{c.base.folder}\n{c.base.safe}\n")), 0,
        "2 tiles: 2 done"),
    Row("tile-missing", lambda c: c.resample(c.listing(c.tmp / "gone" / BAD)), 1,
        "{tmp}/gone/" + BAD + ": tile input not found", others="resample"),
    Row("band-missing", lambda c: (c.band("B05").unlink(), c.resample(c.listing(c.band_folder())))[1],
        1, "missing band(s) B05", others="resample"),
    # --- rasters ---------------------------------------------------------------------------
    Row("band-garbage", lambda c: (c.band("B05").write_bytes(UNREADABLE),
                                   c.resample(c.listing(c.band_folder())))[1],
        1, f"{BAD}_B05.jp2: not a readable raster", others="resample"),
    Row("band-empty-file", lambda c: (c.band("B11").write_bytes(b""),
                                      c.resample(c.listing(c.band_folder())))[1],
        1, f"{BAD}_B11.jp2: not a readable raster", others="resample"),
    Row("band-truncated", _truncated_b08, 1, f"{BAD}_B08.jp2: ", others="combine"),
    Row("band-byte-in-uint16", _bytes_b02, 0, "2 tiles: 2 done", check=_stack_type),
    Row("band-float-among-dn", _float_b08, 1,
        f"{BAD}_B08.tif: Float32 band among UInt16 bands", others="combine"),
    Row("band-no-georeferencing", _unreferenced_b05, 1, f"{BAD}_B05.tif: no CRS / geotransform",
        others="resample"),
    Row("band-shifted-grid", _shifted_b03, 1, f"{BAD}_B03.jp2: grid differs", others="combine"),
    Row("band-other-crs", _other_crs_b05, 1, f"{BAD}_B05.jp2: CRS differs", others="resample"),
    Row("stack-nan-inf", _float_stack, 0, "1 tile: 1 done", check=_invalid_counted),
    Row("stack-eight-bands", _eight_band_stack, 1, "do not match model"),
    Row("reflectance-misscaled", lambda c: c.combine_after_resample(
        c.listing(c.band_folder()), "--set", "sentinel2.quantification=100000000"), 0,
        "2 tiles: 2 done", check=_scale_warned),
    # --- labels and points -----------------------------------------------------------------
    Row("labels-missing", lambda c: c.sample("--labels", c.tmp / "none.tif"), 2,
        "{tmp}/none.tif: not found (sample.labels)"),
    Row("denoise-labels-missing", lambda c: c.cli("denoise", "-t", c.base.tiles, "-o", c.out,
                                                  "--work", c.base.work, "--labels",
                                                  c.tmp / "none.tif"), 2,
        "{tmp}/none.tif: not found (denoise.labels)"),
    Row("labels-garbage", lambda c: c.sample("--labels", c.write("l.tif", UNREADABLE)), 2,
        "{tmp}/l.tif: not a readable raster"),
    Row("labels-vector", lambda c: c.sample("--labels", c.vector("l.gpkg", "v", [(0, 0)])), 2,
        "{tmp}/l.gpkg: not a readable raster"),
    Row("labels-not-overlapping", lambda c: c.sample("--labels", _faraway(c)), 1,
        "{tmp}/faraway.tif: does not overlap the tile"),
    Row("labels-empty-folder", lambda c: ((c.tmp / "none").mkdir(),
                                          c.sample("--labels", c.tmp / "none"))[1], 1,
        "{tmp}/none: no label raster named after tile"),
    Row("labels-list-lacks-tile", _labels_list_without_bad, 1,
        "{tmp}/labels.txt: no label raster named after tile " + BAD, others="sample"),
    Row("points-missing", lambda c: c.sample("--set", "sample.mode=points", "--set",
                                             f"sample.points={c.tmp / 'p.gpkg'}"), 2,
        "{tmp}/p.gpkg: not found (sample.points)"),
    Row("points-unset", lambda c: c.sample("--set", "sample.mode=points"), 2,
        "sample.points is not set"),
    Row("points-no-field", lambda c: c.sample("--set", "sample.mode=points", "--set",
                                              f"sample.points={c.vector('p.gpkg', 'foo', [(0, 0)])}"),
        2, "{tmp}/p.gpkg: no attribute 'ValValue' (has foo)"),
    Row("points-csv-no-coordinates", lambda c: _points_csv(c, "a,b,ValValue\n1,2,1\n"), 2,
        "{tmp}/points.csv: feature 1 has no geometry"),
    Row("points-csv-bad-number", lambda c: _points_csv(c, "x,y,ValValue\n300100,5899900,1\nabc,5899500,0\n"), 2,
        "{tmp}/points.csv: feature 2 has no geometry"),
    Row("points-csv-bad-wkt", lambda c: _points_csv(c, 'WKT,ValValue\n"POINT (1 2)",1\n"POINT (abc 2)",0\n'), 2,
        "{tmp}/points.csv: feature 2"),
    Row("points-class-not-integer", lambda c: _points_csv(c, "x,y,ValValue\n300100,5899900,water\n"), 2,
        "{tmp}/points.csv: feature 1"),
    # --- models ----------------------------------------------------------------------------
    Row("model-missing", lambda c: c.classify(c.tmp / "none"), 2,
        "{tmp}/none: not found (classify.model)"),
    Row("model-json-missing", lambda c: c.classify((c.tmp / "m").mkdir() or c.tmp / "m"), 2,
        "{tmp}/m: not a model folder, no model.json"),
    Row("model-json-not-json", lambda c: c.classify(_damaged(c.model_copy(), "model.json", "{x")), 2,
        "{tmp}/model/model.json: unreadable model metadata"),
    Row("model-json-missing-keys", lambda c: _metadata(c, lambda d: d.pop("channels")), 2,
        "{tmp}/model/model.json: 'channels': Field required"),
    Row("model-json-unknown-kind", lambda c: _metadata(c, lambda d: d.update(kind="xgboost")), 2,
        "{tmp}/model/model.json: 'kind'"),
    Row("model-file-missing", lambda c: _metadata(c, lambda d: d.update(file="gone.joblib")), 2,
        "{tmp}/model/gone.joblib: model file named in model.json is missing"),
    Row("model-keras-garbage", _keras_garbage, 2, "{tmp}/model/model.keras: not a readable Keras model"),
    Row("model-keras-channels", _keras_eight, 2,
        "{tmp}/model/model.keras: weights expect 8 channels, model.json lists 13"),
    Row("model-joblib-garbage", _joblib_garbage, 1, "not a readable scikit-learn model"),
    Row("model-rf-channels", lambda c: _metadata(c, _eight_channels), 1,
        "weights expect 13 channels, model.json lists 8"),
    Row("model-show-missing", lambda c: ["model", "show", str(c.tmp / "none")], 2,
        "{tmp}/none: model folder not found"),
    Row("model-import-not-hdf5", lambda c: ["model", "import-water-gee", str(c.write("m.h5", "text")),
                                            "--out", str(c.tmp / "imported")], 2,
        "{tmp}/m.h5: not a readable HDF5 model"),
    # --- sample sets -----------------------------------------------------------------------
    Row("samples-missing", lambda c: ["train", "-s", str(c.tmp / "none"), "--model", "rf", "-o",
                                      str(c.tmp / "m")], 2,
        "{tmp}/none/manifest.json: not a readable sample-set manifest"),
    Row("samples-manifest-not-json", lambda c: _train(c, _damaged(c.samples_copy(), "manifest.json", "[")), 2,
        "{tmp}/samples/manifest.json: not a readable sample-set manifest"),
    Row("samples-shard-truncated", _truncated_shard, 2, "not a readable sample shard"),
    Row("samples-shard-foreign", _foreign_shard, 2, "not a sample shard (no array X, y)"),
    Row("samples-one-class", _one_class, 2, "training needs samples of two classes at least"),
    Row("train-into-a-model", _train_into_model, 2,
        "{tmp}/model: folder is not empty, it may hold a model (--force replaces it)"),
    Row("train-unknown-kind", lambda c: ["train", "-s", str(c.base.samples), "--model", "xgb", "-o",
                                         str(c.tmp / "m")], 2, "--model xgb: choose one of"),
    # --- configs and settings --------------------------------------------------------------
    Row("config-unknown-key", lambda c: _config(c, "resample:\n  metod: x\n"), 2,
        "{tmp}/c.yaml: unknown key 'resample.metod'"),
    Row("config-wrong-type", lambda c: _config(c, "output:\n  window: big\n"), 2,
        "{tmp}/c.yaml: 'output.window': Input should be a valid integer"),
    Row("config-bad-yaml", lambda c: _config(c, "output:\n  window: [1\nresample: {\n"), 2,
        "{tmp}/c.yaml: "),
    Row("config-not-utf8", lambda c: _config(c, b"output:\n  window: 256\n# caf\xe9\n"), 2,
        "{tmp}/c.yaml: line 3 is not UTF-8"),
    Row("config-a-list", lambda c: _config(c, "- output\n- resample\n"), 2,
        "{tmp}/c.yaml: top level must be a mapping"),
    Row("config-section-not-mapping", lambda c: _config(c, "output: 5\n"), 2, "'output'"),
    Row("config-missing", lambda c: c.resample(c.base.tiles, "--config", c.tmp / "none.yaml"), 2,
        "{tmp}/none.yaml: cannot read config"),
    Row("set-without-equals", lambda c: _set(c, "output.window"), 2,
        "--set 'output.window': expected section.key=value"),
    Row("set-unknown-section", lambda c: _set(c, "nosuch.key=1"), 2, "unknown key 'nosuch'"),
    Row("set-negative-quota", lambda c: _set(c, "sample.quota=-5"), 2,
        "'sample.quota': samples per class must be 0 or more"),
    Row("set-negative-quota-table", lambda c: _set(c, "sample.quota={1: 10, 2: -1}"), 2,
        "'sample.quota': samples per class must be 0 or more"),
    Row("set-window-zero", lambda c: _set(c, "output.window=0"), 2, "'output.window'"),
    Row("set-negative-seed", lambda c: _set(c, "sample.seed=-1"), 2, "'sample.seed'"),
    Row("set-stretch-reversed", lambda c: _set(c, "superpixel.stretch=[99, 1]"), 2,
        "'superpixel.stretch'"),
    Row("set-quantification-zero", lambda c: _set(c, "sentinel2.quantification=0"), 2,
        "'sentinel2.quantification'"),
    Row("set-nodata-negative", lambda c: _set(c, "sentinel2.nodata=-1"), 2, "'sentinel2.nodata'"),
    Row("set-offset-word", lambda c: _set(c, "sentinel2.offset=abc"), 2, "'sentinel2.offset"),
    Row("set-method-unknown", lambda c: _set(c, "resample.method=foo"), 2, "'resample.method'"),
    Row("set-compress-unknown", lambda c: _set(c, "output.compress=foo"), 2, "'output.compress'"),
    Row("set-denoise-rounds-zero", lambda c: _set(c, "denoise.rounds=0"), 2, "'denoise.rounds'"),
    Row("set-batch-zero", lambda c: _classify_set(c, "classify.batch_size=0"), 2,
        "'classify.batch_size'"),
    Row("set-water-guard-out-of-range", lambda c: _set(c, "sample.water_guard=3"), 2,
        "'sample.water_guard'"),
    Row("set-months-13", lambda c: _set(c, "gee.months=[6, 13]"), 2,
        "months (6, 13): each must be 1 to 12"),
    # --- output folders --------------------------------------------------------------------
    Row("out-is-a-file", lambda c: c.cli("resample", "-t", c.base.tiles, "-o", c.write("f", "")),
        2, "{tmp}/f: output folder not writable"),
    Row("out-under-a-file", lambda c: c.cli("resample", "-t", c.base.tiles, "-o",
                                            c.write("f", "") / "w"), 2,
        "{tmp}/f/w: output folder not writable"),
    Row("work-without-stacks", lambda c: c.cli("classify", "-t", c.base.tiles, "-o", c.out,
                                               "--work", c.tmp, "--model", c.base.rf), 1,
        "not found (run `watergee combine` first)"),
    # --- products --------------------------------------------------------------------------
    Row("table-missing", lambda c: c.product("label-transfer", "--table", c.tmp / "t.yaml"), 2,
        "{tmp}/t.yaml: not found (transfer.table_file)"),
    Row("table-bad-yaml", lambda c: c.product("label-transfer", "--table",
                                              c.write("t.yaml", "table: {1: 5\nnames: {5: w}\n")),
        2, "{tmp}/t.yaml: "),
    Row("table-missing-code", _transfer_missing_code, 1, "class 2 is not in transfer.table"),
    Row("table-code-not-integer", lambda c: c.product("label-transfer", "--table",
                                                      c.write("t.yaml", "table: {1: water}\n")),
        2, "{tmp}/t.yaml: 'table.1'"),
    Row("extract-absent-class", lambda c: c.product("extract", "--class", "99"), 1,
        "has no class 99"),
    Row("extract-class-out-of-range", lambda c: c.product("extract", "--class", "300"), 2,
        "'extract.class_id'"),
    Row("sieve-negative-size", lambda c: c.product("sieve", "--min-size", "-1"), 2,
        "'sieve.min_size'"),
    Row("sieve-connectivity-5", lambda c: c.product("sieve", "--connectivity", "5"), 2,
        "'sieve.connectivity'"),
    Row("clip-aoi-missing", lambda c: c.product("clip", "--aoi", c.tmp / "aoi.gpkg"), 2,
        "{tmp}/aoi.gpkg: not found (clip.aoi)"),
    Row("clip-aoi-not-vector", lambda c: c.product("clip", "--aoi", c.write("aoi.txt", "hello")), 2,
        "{tmp}/aoi.txt: not a readable vector file"),
    Row("clip-footprints-unset", lambda c: c.product("clip", "--rule", "footprints"), 2,
        "clip.footprints is not set"),
    Row("clip-footprints-no-field", _footprints_without_field, 2,
        "{tmp}/footprints.gpkg: no attribute 'Name' (has name)"),
    Row("clip-mask-unset", lambda c: c.product("clip", "--rule", "mask"), 2, "clip.mask is not set"),
    Row("merge-unknown-crs", lambda c: c.product("merge", "--crs", "EPSG:99999"), 2,
        "merge.crs: not a CRS GDAL knows"),
    Row("evaluate-reference-missing", lambda c: _evaluate(c, c.tmp / "ref.tif"), 2,
        "{tmp}/ref.tif: not found (evaluate.reference)"),
    Row("evaluate-classified-missing", lambda c: c.cli("evaluate", "--classified",
                                                       c.tmp / "map.tif", "--reference",
                                                       next(c.base.truth.iterdir()), "-o", c.out),
        2, "{tmp}/map.tif: not found (evaluate.classified)"),
    Row("evaluate-reference-garbage", lambda c: _evaluate(c, c.write("ref.tif", UNREADABLE)), 2,
        "{tmp}/ref.tif: neither a raster nor a vector file"),
    Row("evaluate-reference-no-field", lambda c: _evaluate(c, c.vector("r.gpkg", "klass", [(0, 0)])),
        2, "{tmp}/r.gpkg: no attribute 'class' (has klass)"),
    Row("evaluate-reference-elsewhere", lambda c: _evaluate(c, _faraway(c)), 1,
        "{tmp}/faraway.tif: does not overlap"),
    Row("polygonise-unknown-format", lambda c: c.product("polygonise", "--format", "shp"), 2,
        "shp"),
    # --- Earth Engine ----------------------------------------------------------------------
    Row("gee-bbox-three-numbers", lambda c: ["gee", "grid", "--aoi", "1,2,3", "--out",
                                             str(c.tmp / "g.gpkg")], 2,
        "1,2,3: a bounding box needs four numbers"),
    Row("gee-bbox-reversed", lambda c: ["gee", "grid", "--aoi", "1,1,0,0", "--out",
                                        str(c.tmp / "g.gpkg")], 2,
        "1,1,0,0: not a bounding box west,south,east,north"),
    Row("gee-cell-negative", lambda c: ["gee", "grid", "--aoi", "0,0,1,1", "--cell", "-1",
                                        "--out", str(c.tmp / "g.gpkg")], 2, "cell size -1"),
    Row("gee-aoi-missing", lambda c: ["gee", "grid", "--aoi", str(c.tmp / "a.gpkg"), "--out",
                                      str(c.tmp / "g.gpkg")], 2, "{tmp}/a.gpkg: file not found"),
    Row("gee-grid-out-under-a-file", lambda c: ["gee", "grid", "--aoi", "0,0,1,1", "--out",
                                                str(c.write("f", "") / "g.gpkg")], 2,
        "{tmp}/f: cannot create folder"),
    Row("gee-predict-nowhere", lambda c: ["gee", "predict", str(c.base.rf), "--grid",
                                          str(c.tmp / "g.gpkg"), "--dest", "projects/p/assets/a",
                                          "--to", "nowhere"], 2, "--to nowhere: choose"),
    Row("gee-selftest-bad-point", lambda c: ["gee", "selftest", str(c.base.rf), "--at", "abc"], 2,
        "--at abc: give lon,lat"),
    Row("gee-export-missing-model", lambda c: ["gee", "export-model", str(c.tmp / "none")], 2,
        "{tmp}/none"),
    # --- clusters --------------------------------------------------------------------------
    Row("cluster-walltime-word", lambda c: ["cluster", "script", "--set", "cluster.walltime=abc"], 2,
        "'cluster.walltime': 'abc' is not a Slurm time"),
    Row("cluster-lifetime-word", lambda c: ["cluster", "script", "--set", "cluster.lifetime=abc"], 2,
        "'cluster.lifetime': 'abc' is not a duration"),
    Row("cluster-memory-unit", lambda c: ["cluster", "script", "--set", "cluster.job_memory=10XB"], 2,
        "'cluster.job_memory': '10XB' is not a size"),
    Row("cluster-cores-zero", lambda c: ["cluster", "script", "--set", "cluster.job_cores=0"], 2,
        "'cluster.job_cores'"),
    Row("cluster-scheduler-without-address", lambda c: c.resample(c.base.tiles, "--cluster", "scheduler")[:-2], 2,
        "needs the 'scheduler' address"),
    Row("cluster-kind-unknown", lambda c: ["resample", "-t", str(c.base.tiles), "-o", str(c.out),
                                           "--cluster", "foo"], 2, "'cluster.kind'"),
    Row("cluster-slurm-unreachable", _slurm_unreachable, 2, "Slurm"),
]  # fmt: skip


@pytest.fixture(scope="module")
def base(tmp_path_factory, client) -> Base:
    root = tmp_path_factory.mktemp("bad-inputs")
    tiles = make_demo(root / "demo", size=120)
    scheduler = client.scheduler.address
    work, samples, rf, classes = (root / n for n in ("work", "samples", "rf", "classes"))
    truth = root / "demo" / "truth"
    config = root / "sample.yaml"  # the demo's truth: 1 water, 0 land
    config.write_text("sample:\n  classes: {0: 2, 1: 1}\n  class_names: {1: water, 2: land}\n"
                      "  ignore: []\n  quota: 300\n")  # fmt: skip
    steps = [
        ["resample", "-t", tiles, "-o", work],
        ["combine", "-t", tiles, "-o", work],
        ["sample", "-t", tiles, "-o", samples, "--work", work, "--labels", truth, "-c", config],
        ["train", "-s", samples, "--model", "rf", "-o", rf],
        ["classify", "-t", tiles, "-o", classes, "--work", work, "--model", rf],
    ]
    for step in steps:
        extra = [] if step[0] == "train" else ["--scheduler", scheduler]
        result = runner.invoke(app, [str(a) for a in step] + extra)
        assert result.exit_code == 0, result.output
    safe = next((root / "demo").glob("*.SAFE"))
    return Base(root, tiles, root / "demo" / BAD, safe, truth, work, samples, rf, classes,
                scheduler)  # fmt: skip


def test_the_table_has_eighty_distinct_rows():
    ids = [row.id for row in ROWS]
    assert len(ids) >= 80 and len(set(ids)) == len(ids)


@pytest.mark.parametrize("row", ROWS, ids=[row.id for row in ROWS])
def test_bad_input(row: Row, base: Base, tmp_path, monkeypatch):
    broken = tmp_path / "slurm.conf"
    broken.write_text("ControlMachine=\n")  # a damaged slurm.conf: sbatch refuses at once
    monkeypatch.setenv("SLURM_CONF", str(broken))
    case = Case(base, tmp_path)
    args = [str(a) for a in row.make(case)]
    result = runner.invoke(app, args)
    output = result.output
    fragment = row.fragment.format(tmp=tmp_path)
    assert result.exit_code == row.code, output
    assert fragment in output, output
    assert "Traceback" not in output
    assert not isinstance(result.exception, Exception) or isinstance(result.exception, SystemExit)
    if row.code == 2:  # nothing ran: one line says why
        lines = [line for line in output.splitlines() if line.strip()]
        assert len(lines) == 1 and lines[0].startswith("watergee: error: "), output
    assert not list(tmp_path.rglob("*.partial-*")), "partial files left"
    if row.others:
        record = _record(case, GOOD, row.others)
        assert record["status"] == "done"
    if row.check:
        row.check(case)
