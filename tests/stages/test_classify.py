"""classify: dense inference equals per-patch inference everywhere, seams included."""

import json
import subprocess

import numpy as np
import pytest
from numpy.lib.stride_tricks import sliding_window_view
from osgeo import gdal

from tests.conftest import ORIGIN, randomise_weights
from watergee.core import layout
from watergee.core.atomic import atomic_path
from watergee.core.config import load_settings
from watergee.core.errors import ModelError
from watergee.core.registry import STAGES
from watergee.core.runner import run_stage
from watergee.core.tiles import Tile
from watergee.io.raster import open_raster, raster_grid, utm_grid, write_array
from watergee.models.artifact import ClassInfo, ModelMetadata, write_metadata
from watergee.stages.classify import classify

H, W, BANDS = 150, 170, ("B02", "B03", "B04", "B08", "B11")
#: The stacks below hold random reflectances, their "water" as bright as roofs in B11 and as
#: green as forest: tests of the model's own output turn the checks on water off (they have
#: tests of their own).
NO_WATER_CHECKS = ["classify.water_max_swir=null", "classify.water_max_ndvi=null"]
CLASSES = [ClassInfo(id=1, name="water"), ClassInfo(id=2, name="land"),
           ClassInfo(id=3, name="urban")]  # fmt: skip


def _stack(tmp_path, nan_block=True):
    rng = np.random.default_rng(0)
    data = rng.integers(100, 4000, size=(len(BANDS), H, W)).astype(np.uint16)
    if nan_block:
        data[:, 60:64, 90:95] = 0  # no data
    path = tmp_path / "T33XYZ_stack.tif"
    write_array(path, data, utm_grid(32633, ORIGIN, 10, W, H), nodata=0)
    ds = gdal.Open(str(path), gdal.GA_Update)
    for i, name in enumerate(BANDS, start=1):
        ds.GetRasterBand(i).SetDescription(name)
        ds.GetRasterBand(i).SetScale(1e-4)
    ds = None
    values = data.astype(np.float32) * np.float32(1e-4)
    values[:, data[0] == 0] = np.nan
    return Tile("T33XYZ_stack", path), values


def _artifact(folder, kind, model, field, patch, channels=BANDS, normalization=True):
    folder.mkdir(parents=True)
    with atomic_path(folder / "model.keras") as tmp:
        model.save(tmp)
    rng = np.random.default_rng(9)
    norm = (
        {
            "mean": rng.uniform(0.1, 0.2, len(channels)).tolist(),
            "std": rng.uniform(0.05, 0.1, len(channels)).tolist(),
        }
        if normalization
        else None
    )
    metadata = ModelMetadata(
        kind=kind,
        file="model.keras",
        channels=list(channels),
        scaling="reflectance",
        patch=patch,
        receptive_field=field,
        normalization=norm,
        classes=CLASSES,
    )
    write_metadata(folder, metadata)
    return metadata


def _patch_reference(values, model, field, norm, patch_output):
    """Per-pixel patch inference over the whole image, the slow obvious way."""
    x = np.moveaxis(values, 0, -1)
    x = (x - np.array(norm["mean"], np.float32)) / np.array(norm["std"], np.float32)
    half = field // 2
    padded = np.pad(np.nan_to_num(x), ((half, field - half - 1), (half, field - half - 1), (0, 0)))
    views = sliding_window_view(padded, (field, field), axis=(0, 1))  # H, W, C, f, f
    patches = np.moveaxis(views, 2, -1).reshape(-1, field, field, x.shape[-1])
    out = model.predict(patches, batch_size=4096, verbose=0)
    return out.reshape(H, W, -1) if patch_output else out[:, 0, 0, :].reshape(H, W, -1)


def _expected_valid(values, field):
    from watergee.sampling import patch_fits

    return patch_fits(~np.isnan(values).any(axis=0), field)


@pytest.mark.parametrize("kind", ["pixelcnn", "dense-resnet", "resnet"])
def test_classify_equals_patch_inference_across_window_seams(tmp_path, kind):
    from watergee.models.pixelcnn import build_pixelcnn
    from watergee.models.resnet import build_dense_resnet, build_resnet

    tile, values = _stack(tmp_path)
    if kind == "pixelcnn":
        model, field = build_pixelcnn(len(BANDS), 3), 7
    elif kind == "dense-resnet":
        model, field = build_dense_resnet(len(BANDS), 3, blocks=2, width=8), 7
    else:
        model, field = build_resnet(4, len(BANDS), 3, depth=11, kernel=3), 4
    randomise_weights(model, 1)
    folder = tmp_path / "model"
    metadata = _artifact(folder, kind, model, field, field)
    settings = load_settings(
        None,
        [
            f"classify.model={folder}",
            "classify.probabilities=float32",
            "classify.window=64",
            "classify.batch_size=1000",
            *NO_WATER_CHECKS,
        ],
    )
    out = tmp_path / "out"
    result = classify(tile, settings, out)
    assert result.info["window"] == 64  # windows meet at 64 and 128 px: seams are tested
    probabilities = open_raster(layout.probabilities(out, tile, "pixel")).ReadAsArray()
    ds = open_raster(layout.classes(out, tile, "pixel"))
    classes = ds.ReadAsArray()
    expected = _patch_reference(values, model, field, metadata.normalization, kind == "resnet")
    valid = _expected_valid(values, field)
    assert (classes[~valid] == 255).all() and np.isnan(probabilities[:, ~valid]).all()
    np.testing.assert_allclose(np.moveaxis(probabilities, 0, -1)[valid], expected[valid], atol=1e-5)
    np.testing.assert_array_equal(classes[valid], np.array([1, 2, 3])[expected[valid].argmax(-1)])
    assert raster_grid(result.outputs[0]).matches(raster_grid(tile.source))


def _forest(tmp_path, recipe, kind="rf"):
    import joblib
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC

    rng = np.random.default_rng(2)
    n_features = len(BANDS) * (3 if recipe == "patch-stats" else 1)
    estimator = RandomForestClassifier(20, random_state=0) if kind == "rf" else SVC()
    pipeline = make_pipeline(StandardScaler(), estimator)
    pipeline.fit(rng.uniform(0, 0.4, (300, n_features)), rng.integers(1, 4, 300))
    folder = tmp_path / f"{kind}-{recipe}"
    folder.mkdir()
    joblib.dump(pipeline, folder / "model.joblib")
    patch = 5
    metadata = ModelMetadata(
        kind=kind,
        file="model.joblib",
        channels=list(BANDS),
        scaling="reflectance",
        patch=patch,
        receptive_field=1 if recipe == "centre" else patch,
        features={"sklearn": recipe},
        classes=CLASSES,
    )
    write_metadata(folder, metadata)
    return folder, pipeline, patch


@pytest.mark.parametrize("recipe", ["centre", "patch-stats"])
def test_random_forest_per_pixel_equals_its_training_features(tmp_path, recipe):
    from watergee.models.training import sklearn_features

    tile, values = _stack(tmp_path)
    folder, pipeline, patch = _forest(tmp_path, recipe)
    settings = load_settings(
        None,
        [
            f"classify.model={folder}",
            "classify.probabilities=float32",
            "classify.memory_mb=64",
            *NO_WATER_CHECKS,
        ],
    )
    out = tmp_path / "out"
    classify(tile, settings, out)
    probabilities = np.moveaxis(
        open_raster(layout.probabilities(out, tile, "pixel")).ReadAsArray(), 0, -1
    )
    field = 1 if recipe == "centre" else patch
    valid = _expected_valid(values, field)
    rows, cols = np.nonzero(valid)
    pick = np.random.default_rng(0).choice(len(rows), 300, replace=False)
    half = field // 2
    x = np.moveaxis(values, 0, -1)
    patches = np.stack(
        [
            x[r - half : r - half + field, c - half : c - half + field]
            for r, c in zip(rows[pick], cols[pick], strict=True)
        ]
    )
    expected = pipeline.predict_proba(sklearn_features(patches, recipe))
    np.testing.assert_allclose(probabilities[rows[pick], cols[pick]], expected, atol=1e-6)


def test_svm_writes_its_decision_as_probabilities(tmp_path):
    tile, values = _stack(tmp_path)
    folder, pipeline, _ = _forest(tmp_path, "centre", kind="svm")
    out = tmp_path / "out"
    settings = load_settings(
        None,
        [
            f"classify.model={folder}",
            "classify.probabilities=uint8",
            "classify.window=64",
            *NO_WATER_CHECKS,
        ],
    )
    classify(tile, settings, out)
    ds = open_raster(layout.classes(out, tile, "pixel"))
    classes = ds.ReadAsArray()
    probabilities = open_raster(layout.probabilities(out, tile, "pixel")).ReadAsArray()
    valid = ~np.isnan(values).any(axis=0)
    expected = pipeline.predict(np.moveaxis(values, 0, -1)[valid])
    np.testing.assert_array_equal(classes[valid], expected)
    one_hot = (expected[:, None] == np.array([1, 2, 3])) * 250
    np.testing.assert_array_equal(np.moveaxis(probabilities, 0, -1)[valid], one_hot)
    assert (classes[~valid] == 255).all()
    ds = open_raster(layout.probabilities(out, tile, "pixel"))  # GDAL gives 0-1, COG layout
    assert ds.GetRasterBand(1).GetScale() == pytest.approx(1 / 250)
    assert ds.GetMetadata("IMAGE_STRUCTURE").get("LAYOUT") == "COG"


def test_superpixel_mode_paints_one_class_per_segment(tmp_path):
    tile, values = _stack(tmp_path, nan_block=False)
    folder, pipeline, _ = _forest(tmp_path, "centre")
    segments = (np.arange(H)[:, None] // 10) * 100 + (np.arange(W)[None, :] // 17) + 1
    seg_path = layout.segments(tmp_path / "out", tile)
    write_array(seg_path, segments.astype(np.uint32), raster_grid(tile.source), nodata=0)
    # No SEGMENTS metadata (segments made elsewhere): the ids are counted by a scan.
    out = tmp_path / "out"
    options = [f"classify.model={folder}", "classify.mode=superpixel", *NO_WATER_CHECKS]
    classify(tile, load_settings(None, options), out)
    painted = open_raster(layout.classes(out, tile, "superpixel")).ReadAsArray()
    x = np.moveaxis(values, 0, -1).reshape(-1, len(BANDS))
    pixel_probabilities = pipeline.predict_proba(x).reshape(H, W, 3)
    for sid in np.unique(segments)[::5]:
        inside = segments == sid
        assert len(np.unique(painted[inside])) == 1
        assert painted[inside][0] == [1, 2, 3][pixel_probabilities[inside].mean(0).argmax()]


def test_bad_inputs(tmp_path):
    from watergee.models.pixelcnn import build_pixelcnn

    tile, _ = _stack(tmp_path)
    folder = tmp_path / "model"
    _artifact(folder, "pixelcnn", build_pixelcnn(3, 3), 7, 7, channels=("B02", "B03", "B12"))
    with pytest.raises(
        ModelError,
        match=rf"{tile.source}: channels B02, B03, B04, B08, B11 do not match model "
        rf"{folder} \(B02, B03, B12\)",
    ):
        classify(tile, load_settings(None, [f"classify.model={folder}"]), tmp_path / "o")
    (folder / "model.json").unlink()
    with pytest.raises(ModelError, match=r"model.json: model metadata missing"):
        classify(
            tile, load_settings(None, [f"classify.model={tmp_path / 'model'}"]), tmp_path / "o2"
        )


def test_tiny_and_empty_tiles(tmp_path):
    from watergee.models.pixelcnn import build_pixelcnn

    folder = tmp_path / "model"
    _artifact(folder, "pixelcnn", build_pixelcnn(len(BANDS), 3), 7, 7)
    settings = load_settings(None, [f"classify.model={folder}"])
    tiny = tmp_path / "tiny.tif"
    write_array(
        tiny, np.ones((len(BANDS), 5, 5), np.uint16), utm_grid(32633, ORIGIN, 10, 5, 5), nodata=0
    )
    ds = gdal.Open(str(tiny), gdal.GA_Update)
    for i, name in enumerate(BANDS, start=1):
        ds.GetRasterBand(i).SetDescription(name)
    ds = None
    with pytest.raises(
        ModelError, match=r"tiny\.tif: 5x5 px is smaller than the model's receptive field of 7"
    ):
        classify(Tile("tiny", tiny), settings, tmp_path / "o")
    empty = tmp_path / "empty.tif"
    write_array(
        empty,
        np.zeros((len(BANDS), 40, 40), np.uint16),
        utm_grid(32633, ORIGIN, 10, 40, 40),
        nodata=0,
    )
    ds = gdal.Open(str(empty), gdal.GA_Update)
    for i, name in enumerate(BANDS, start=1):
        ds.GetRasterBand(i).SetDescription(name)
    ds = None
    result = classify(Tile("empty", empty), settings, tmp_path / "o")
    assert (open_raster(result.outputs[0]).ReadAsArray() == 255).all()


def test_classify_resumes_like_every_stage(tmp_path, client):
    tile, _ = _stack(tmp_path)
    folder, _, _ = _forest(tmp_path, "centre")
    settings = load_settings(None, [f"classify.model={folder}", "cluster.processes=false"])
    out = tmp_path / "out"
    first = run_stage(STAGES["classify"], [tile], settings, out, client)
    again = run_stage(STAGES["classify"], [tile], settings, out, client)
    assert [o.status for o in first.outcomes] == ["done"]
    assert [o.status for o in again.outcomes] == ["skipped"]
    (folder / "model.joblib").write_bytes((folder / "model.joblib").read_bytes())  # retrained
    assert [
        o.status for o in run_stage(STAGES["classify"], [tile], settings, out, client).outcomes
    ] == ["done"]


def test_pixel_and_superpixel_maps_keep_records_of_their_own(tmp_path, client):
    from watergee.stages.superpixel import superpixel

    tile, _ = _stack(tmp_path)
    folder, _, _ = _forest(tmp_path, "centre")
    out = tmp_path / "out"
    superpixel(tile, load_settings(None, ["superpixel.region_size=8"]), out)
    pixel = load_settings(None, [f"classify.model={folder}", "cluster.processes=false"])
    segments = pixel.model_copy(
        update={"classify": pixel.classify.model_copy(update={"mode": "superpixel"})}
    )

    def status(settings):
        return [
            o.status for o in run_stage(STAGES["classify"], [tile], settings, out, client).outcomes
        ]

    assert status(pixel) == ["done"] and status(segments) == ["done"]
    assert status(pixel) == ["skipped"] and status(segments) == ["skipped"]
    assert layout.record(out, tile, "classify-pixel").exists()
    assert layout.record(out, tile, "classify-superpixel").exists()


@pytest.mark.parametrize("reads_b11", [True, False], ids=["B11 an input", "B11 not an input"])
def test_classify_from_band_files_equals_classify_from_the_stack(demo_scene, tmp_path, reads_b11):
    """Reading JP2 bands directly, 20 m bands interpolated on the fly, gives the same map as
    resample + combine + classify, without writing either intermediate; the checks on water read
    B11 from the model's inputs or through a band stack of their own alike."""
    from watergee.io.bandstack import UpsampledBand
    from watergee.models.pixelcnn import build_pixelcnn
    from watergee.sentinel2 import STACK_ORDER, read_tiles
    from watergee.stacks import band_stack
    from watergee.stages.combine import combine
    from watergee.stages.resample import resample

    tile = read_tiles(demo_scene)[1]  # the L2A .SAFE, with its -1000 offset
    channels = [b for b in STACK_ORDER if reads_b11 or b != "B11"]
    model = build_pixelcnn(len(channels), 3)
    randomise_weights(model, 4)
    folder = tmp_path / "model"
    _artifact(folder, "pixelcnn", model, 7, 7, channels=channels, normalization=False)
    common = [
        f"classify.model={folder}",
        "classify.probabilities=float32",
        "classify.window=100",
        "classify.water_class=3",
    ]  # the class random weights give most pixels: the SWIR check bites
    staged = tmp_path / "staged"
    settings = load_settings(None, common)
    resample(tile, settings, staged)
    combine(tile, settings, staged)
    checked = classify(tile, settings, staged).info
    direct = tmp_path / "direct"
    result = classify(tile, load_settings(None, [*common, "classify.source=bands"]), direct)
    assert not list(direct.glob("*/*_10m.tif"))  # no intermediate written
    stack, _ = band_stack(tile, settings)  # every band read through block rows, 20 m ones
    upsampled = [b for b, r in stack._readers.items() if isinstance(r, UpsampledBand)]
    assert sorted(stack._readers) == list(range(1, 11)) and upsampled == list(range(5, 11))
    assert all(p.suffix == ".jp2" for p in result.inputs[:10])
    assert result.info["not_water_by_swir"] == checked["not_water_by_swir"] > 0
    assert result.info["not_water_by_vegetation"] == checked["not_water_by_vegetation"]
    a = open_raster(layout.probabilities(staged, tile, "pixel")).ReadAsArray()
    b = open_raster(layout.probabilities(direct, tile, "pixel")).ReadAsArray()
    np.testing.assert_allclose(a, b, atol=1e-6)
    np.testing.assert_array_equal(
        open_raster(layout.classes(staged, tile, "pixel")).ReadAsArray(),
        open_raster(layout.classes(direct, tile, "pixel")).ReadAsArray(),
    )


def _gdalinfo(path):
    """What GIS tools see of `path`: gdalinfo reads GDAL's auxiliary files (watergee itself
    turns them off)."""
    import subprocess

    run = subprocess.run(
        ["gdalinfo", "-json", str(path)], capture_output=True, text=True, check=True
    )
    return json.loads(run.stdout)


def test_a_class_map_shows_its_legend_in_gis_tools_and_a_lost_legend_is_rewritten(tmp_path, client):

    tile, _ = _stack(tmp_path)
    folder, _, _ = _forest(tmp_path, "centre")
    settings = load_settings(None, [f"classify.model={folder}", "cluster.processes=false"])
    out = tmp_path / "out"
    assert run_stage(STAGES["classify"], [tile], settings, out, client).outcomes[0].status == "done"
    target = layout.classes(out, tile, "pixel")

    info = _gdalinfo(target)
    assert info["bands"][0]["categories"] == ["", "water", "land", "urban"]
    rat = info["rat"]
    assert [(f["name"], f["usage"]) for f in rat["fieldDefn"]] == [
        ("Value", gdal.GFU_MinMax), ("Class", gdal.GFU_Name), ("Red", gdal.GFU_Red),
        ("Green", gdal.GFU_Green), ("Blue", gdal.GFU_Blue),
    ]  # fmt: skip
    assert [row["f"] for row in rat["row"]] == [
        [1, "water", 0, 92, 230], [2, "land", 235, 225, 200], [3, "urban", 230, 0, 0]
    ]  # fmt: skip
    table = info["bands"][0]["colorTable"]["entries"]
    assert [table[c][:3] for c in (1, 2, 3)] == [[0, 92, 230], [235, 225, 200], [230, 0, 0]]

    sidecar = target.with_name(target.name + ".aux.xml")
    record = json.loads((out / tile.id / ".watergee" / "classify-pixel.json").read_text())
    assert sidecar.name in {p["path"].split("/")[-1] for p in record["outputs"]}
    subprocess.run(["gdalinfo", "-stats", str(target)], capture_output=True, check=True)
    assert "STATISTICS_MEAN" in sidecar.read_text()  # a GIS tool added to the legend file
    assert run_stage(STAGES["classify"], [tile], settings, out, client).outcomes[0].status == (
        "skipped"
    )
    sidecar.unlink()  # a lost legend makes the tile stale: the re-run writes it again
    assert run_stage(STAGES["classify"], [tile], settings, out, client).outcomes[0].status == "done"
    assert _gdalinfo(target)["bands"][0]["categories"][1] == "water"


def test_the_quicklook_shows_the_classes_with_a_legend_beside_the_tile_in_true_colour(
    tmp_path, client
):
    from PIL import Image

    from watergee.io.quicklook import GAP, SWATCH

    tile, _ = _stack(tmp_path)
    folder, _, _ = _forest(tmp_path, "centre")
    settings = load_settings(None, [f"classify.model={folder}", "cluster.processes=false"])
    out = tmp_path / "out"
    run_stage(STAGES["classify"], [tile], settings, out, client)
    look = np.asarray(Image.open(layout.quicklook(out, tile, "pixel")).convert("RGB"))
    ds = open_raster(layout.classes(out, tile, "pixel"))
    classes = ds.ReadAsArray()
    assert look.shape == (H + GAP + 3 * (SWATCH + 4), 2 * W + GAP, 3)  # three legend rows
    table = ds.GetRasterBand(1).GetColorTable()
    panel = look[:H, W + GAP :]
    for code in (1, 2, 3):
        where = classes == code
        assert where.any() and (panel[where] == table.GetColorEntry(code)[:3]).all()
    assert (panel[classes == 255] == 255).all()  # no data: the white background
    true_colour = look[:H, :W].astype(int)
    assert true_colour.std() > 20 and (true_colour[:, :, 0] != true_colour[:, :, 2]).any()


def _check_stack(tmp_path, scale=1e-4):
    """Water-like bands everywhere; B11 0.02 (water), 0.14 (just below the limit) and 0.3
    (a roof) in three column bands; rows 120 on NDVI 0.6 and 0.2 in the NIR (vegetation), rows
    100-110 NDVI 0.6 but 0.06 in the NIR (water by a shore); a no-data block among the roofs.
    Returns the tile, where it has data, B11 and where it is vegetation."""
    data = np.full((len(BANDS), H, W), 500, np.uint16)
    swir = np.select([np.arange(W) < 60, np.arange(W) < 110], [200, 1400], 3000).astype(np.uint16)
    data[BANDS.index("B11")] = swir[None, :]
    data[BANDS.index("B08"), 120:], data[BANDS.index("B04"), 120:] = 2000, 500
    data[BANDS.index("B08"), 100:110], data[BANDS.index("B04"), 100:110] = 600, 150
    data[:, 60:64, 140:145] = 0  # among the roofs: no SWIR there, no evidence against water
    path = tmp_path / "T33XYZ_swir.tif"
    write_array(path, data, utm_grid(32633, ORIGIN, 10, W, H), nodata=0)
    ds = gdal.Open(str(path), gdal.GA_Update)
    for i, name in enumerate(BANDS, start=1):
        ds.GetRasterBand(i).SetDescription(name)
        if scale is not None:
            ds.GetRasterBand(i).SetScale(scale)
    ds = None
    green = np.zeros((H, W), bool)
    green[120:] = True
    return Tile("T33XYZ_swir", path), data[0] != 0, swir[None, :].repeat(H, 0) * 1e-4, green


def _certain_model(tmp_path, channels=BANDS, classes=CLASSES, biases=(2.0, 1.0, 0.0)):
    """A pixel CNN that ignores its input: softmax of `biases` everywhere, water first."""
    from watergee.models.pixelcnn import build_pixelcnn

    model = build_pixelcnn(len(channels), 3)
    for layer in model.layers:
        layer.set_weights([np.zeros_like(w) for w in layer.get_weights()])
    kernel, _ = model.get_layer("probabilities").get_weights()
    model.get_layer("probabilities").set_weights([kernel, np.array(biases, np.float32)])
    folder = tmp_path / "model"
    metadata = _artifact(folder, "pixelcnn", model, 7, 7, channels=channels)
    if classes is not CLASSES:
        write_metadata(folder, metadata.model_copy(update={"classes": classes}))
    return folder


@pytest.mark.parametrize(
    ("channels", "mode"),
    [
        (BANDS, "pixel"),
        (BANDS[:4], "pixel"),
        (("B02", "B03", "B11"), "pixel"),
        (BANDS, "superpixel"),
    ],
    ids=[
        "all model inputs",
        "B11 read from the stack",
        "B04, B08 read from the stack",
        "superpixel",
    ],
)
def test_water_too_bright_in_the_swir_or_green_gets_its_next_most_probable_class(
    tmp_path, channels, mode
):
    tile, has_data, swir, green = _check_stack(tmp_path)
    folder = _certain_model(tmp_path, channels)
    out = tmp_path / "out"
    if mode == "superpixel":
        segments = (np.arange(H)[:, None] // 10) * 100 + (np.arange(W)[None, :] // 17) + 1
        write_array(layout.segments(out, tile), segments.astype(np.uint32),
                    raster_grid(tile.source), nodata=0)  # fmt: skip
    options = [f"classify.model={folder}", f"classify.mode={mode}",
               "classify.probabilities=float32", "classify.window=64"]  # fmt: skip
    result = classify(tile, load_settings(None, options), out)

    if mode == "pixel":
        valid = _expected_valid(np.where(has_data, 0, np.nan)[None], 7)
    else:  # a segment's class covers its no-data pixels: no SWIR there, they stay water
        valid = np.ones_like(has_data)
    classes = open_raster(layout.classes(out, tile, mode)).ReadAsArray()
    probabilities = np.moveaxis(
        open_raster(layout.probabilities(out, tile, mode)).ReadAsArray(), 0, -1
    )
    bright = valid & has_data & (swir > 0.15)
    vegetation = valid & has_data & green & ~bright  # the roofs fail the SWIR check first
    failed = bright | vegetation
    # 0.02 and 0.14 in B11, NDVI 0.06 or NDVI 0.6 dark in the NIR: water stays
    np.testing.assert_array_equal(classes[valid & ~failed], 1)
    np.testing.assert_array_equal(classes[failed], 2)  # land, the next most probable
    assert (classes[~valid] == 255).all()
    model_p = np.exp([2.0, 1.0, 0.0]) / np.exp([2.0, 1.0, 0.0]).sum()
    np.testing.assert_allclose(probabilities[valid & ~failed], np.broadcast_to(model_p, (1, 3))
                               .repeat((valid & ~failed).sum(), 0), atol=1e-6)  # fmt: skip
    rest = np.array([0, model_p[1], model_p[2]]) / (model_p[1] + model_p[2])
    np.testing.assert_allclose(probabilities[failed], rest[None].repeat(failed.sum(), 0), atol=1e-6)
    assert result.info["not_water_by_swir"] == bright.sum() > 0
    assert result.info["not_water_by_vegetation"] == vegetation.sum() > 0
    assert result.info["unclassified_by_swir"] == result.info["unclassified_by_vegetation"] == 0
    vegetation_rule = "NDVI(B04, B08) > 0.25 and B08 > 0.1"
    assert result.info["water_swir_check"] == "B11 > 0.15"
    assert result.info["water_vegetation_check"] == vegetation_rule
    metadata = open_raster(layout.classes(out, tile, mode)).GetMetadata()
    assert metadata["WATER_SWIR_CHECK"] == "B11 > 0.15"
    assert metadata["WATER_VEGETATION_CHECK"] == vegetation_rule


SWIR_OFF, NDVI_OFF = "classify.water_max_swir=null", "classify.water_max_ndvi=null"


@pytest.mark.parametrize(
    ("case", "options", "reasons"),
    [
        ("off", [SWIR_OFF, NDVI_OFF],
         {"swir": "off (classify.water_max_swir: null)",
          "vegetation": "off (classify.water_max_ndvi: null)"}),
        ("unscaled", [],
         {"swir": "off (band B11 is stored as integers without a scale to reflectance)",
          "vegetation": "off (band B04 is stored as integers without a scale to reflectance)"}),
        ("no water class", [],
         dict.fromkeys(["swir", "vegetation"],
                       "off (no water class among the model's classes, or no other class)")),
        ("no B12, no B8A", ["classify.swir_band=B12", "classify.nir_band=B8A"],
         {"swir": "has no band B12", "vegetation": "has no band B8A"}),
    ],
)  # fmt: skip
def test_the_checks_on_water_stay_off_where_they_cannot_judge(
    tmp_path, case, options, reasons, caplog
):
    tile, _, _, _ = _check_stack(tmp_path, scale=None if case == "unscaled" else 1e-4)
    named = [ClassInfo(id=1, name="lake"), *CLASSES[1:]] if case == "no water class" else CLASSES
    folder = _certain_model(tmp_path, classes=named)
    out = tmp_path / "out"
    result = classify(tile, load_settings(None, [f"classify.model={folder}", *options]), out)
    classes = open_raster(layout.classes(out, tile, "pixel")).ReadAsArray()
    assert set(np.unique(classes)) == {1, 255}  # the model's water everywhere, roofs included
    for check, reason in reasons.items():
        assert reason in result.info[f"water_{check}_check"]
        assert f"not_water_by_{check}" not in result.info
    if case == "unscaled":
        assert "T33XYZ_swir.tif: band B11 is stored as integers" in caplog.text
    if case == "no water class":  # named by id instead, the checks are on again
        options = [f"classify.model={folder}", "classify.water_class=1"]
        result = classify(tile, load_settings(None, options), tmp_path / "again")
        assert result.info["not_water_by_swir"] > 0 and result.info["not_water_by_vegetation"] > 0


def test_one_check_on_water_works_with_the_other_off(tmp_path):
    """The SWIR check off: the roofs in the vegetation rows fail the vegetation check instead,
    the other roofs stay water."""
    tile, has_data, swir, green = _check_stack(tmp_path)
    folder = _certain_model(tmp_path, BANDS[:3])  # B04 from the features, B08 from the stack
    options = [f"classify.model={folder}", SWIR_OFF]
    result = classify(tile, load_settings(None, options), tmp_path / "out")
    classes = open_raster(layout.classes(tmp_path / "out", tile, "pixel")).ReadAsArray()
    valid = _expected_valid(np.where(has_data, 0, np.nan)[None], 7)
    np.testing.assert_array_equal(classes[valid & green], 2)
    np.testing.assert_array_equal(classes[valid & ~green], 1)
    assert result.info["not_water_by_vegetation"] == (valid & green).sum() > 0
    assert "not_water_by_swir" not in result.info
    assert result.info["water_swir_check"] == "off (classify.water_max_swir: null)"
    assert (swir[valid & ~green] > 0.15).any()  # bright roofs among what stays water


def test_water_a_model_is_certain_of_and_failing_a_check_becomes_no_data(tmp_path):
    """No other class has any probability: none is more likely, so none is written."""
    tile, has_data, swir, green = _check_stack(tmp_path)
    folder = _certain_model(tmp_path, biases=(200.0, 0.0, 0.0))  # float32 softmax: exactly 1, 0
    result = classify(tile, load_settings(None, [f"classify.model={folder}"]), tmp_path / "out")
    classes = open_raster(layout.classes(tmp_path / "out", tile, "pixel")).ReadAsArray()
    valid = _expected_valid(np.where(has_data, 0, np.nan)[None], 7)
    bright = valid & (swir > 0.15)
    vegetation = valid & green & ~bright
    np.testing.assert_array_equal(classes[bright | vegetation], 255)
    np.testing.assert_array_equal(classes[valid & ~bright & ~vegetation], 1)
    assert result.info["unclassified_by_swir"] == bright.sum() > 0
    assert result.info["unclassified_by_vegetation"] == vegetation.sum() > 0
    assert result.info["not_water_by_swir"] == result.info["not_water_by_vegetation"] == 0


def test_a_water_class_the_model_lacks_stops_the_run_before_any_tile(tmp_path):
    folder = _certain_model(tmp_path)
    settings = load_settings(None, [f"classify.model={folder}", "classify.water_class=9"])
    problem = STAGES["classify"].missing_input(settings)
    expected = "classify.water_class 9 is not one of the model's classes [1, 2, 3]"
    assert problem == f"{folder / 'model.json'}: {expected}"


def test_classify_in_bfloat16_stays_close_to_float32(tmp_path):
    """Mixed precision is applied (the probabilities move) and changes only near-ties."""
    import keras

    from watergee.models.pixelcnn import build_pixelcnn

    tile, values = _stack(tmp_path)
    keras.utils.set_random_seed(1)
    model = build_pixelcnn(len(BANDS), 3)  # Keras' initial weights: logits of a trained size
    folder = tmp_path / "model"
    metadata = _artifact(folder, "pixelcnn", model, 7, 7)
    options = [f"classify.model={folder}", "classify.probabilities=float32", *NO_WATER_CHECKS]
    classify(tile, load_settings(None, options), tmp_path / "float32")  # the model is cached
    settings = load_settings(None, [*options, "classify.precision=bfloat16"])
    classify(tile, settings, tmp_path / "out")
    probabilities = open_raster(layout.probabilities(tmp_path / "out", tile, "pixel")).ReadAsArray()
    classes = open_raster(layout.classes(tmp_path / "out", tile, "pixel")).ReadAsArray()
    expected = _patch_reference(values, model, 7, metadata.normalization, False)
    valid = _expected_valid(values, 7)
    assert (classes[~valid] == 255).all()
    difference = np.abs(np.moveaxis(probabilities, 0, -1)[valid] - expected[valid])
    assert 1e-4 < difference.max() < 0.02  # not the cached float32 network
    same = classes[valid] == np.array([1, 2, 3])[expected[valid].argmax(-1)]
    assert same.mean() > 0.98
    margin = np.diff(np.sort(expected[valid], -1)[:, -2:], axis=-1)[:, 0]
    assert same[margin > 0.05].all()  # only near-ties may change class
