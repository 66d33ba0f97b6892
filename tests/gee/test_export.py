"""The network as an Earth Engine expression: built with the real earthengine-api, serialised,
and evaluated locally; it must equal the Keras model's dense output."""

import json

import numpy as np
import pytest

from tests.conftest import REAL_DATA, randomise_weights
from watergee.core.atomic import atomic_path
from watergee.core.errors import ModelError
from watergee.gee.export import network_image, operation_count
from watergee.gee.interpreter import evaluate, image_from_array
from watergee.gee.model_export import FEATURES_ID, export_model
from watergee.gee.network import pairwise_convolutions, read_network
from watergee.models.artifact import ClassInfo, ModelMetadata, write_metadata
from watergee.models.pixelcnn import build_pixelcnn

CHANNELS = ["blue", "green", "red", "nir", "swir1", "MNDWI", "LINE", "DEM/4000"]
CLASSES = [ClassInfo(id=1, name="water"), ClassInfo(id=2, name="land")]


def _artifact(folder, model, normalization=None, channels=CHANNELS, kind="pixelcnn"):
    folder.mkdir(parents=True)
    with atomic_path(folder / "model.keras") as tmp:
        model.save(tmp)
    metadata = ModelMetadata(kind=kind, file="model.keras", channels=channels,
                             scaling="reflectance", patch=7, receptive_field=7,
                             normalization=normalization, classes=CLASSES)  # fmt: skip
    write_metadata(folder, metadata)
    return folder


def _evaluate(image, features, names):
    import ee

    encoded = ee.serializer.encode(image, for_cloud_api=True)
    return evaluate(encoded, {FEATURES_ID: image_from_array(features, names)})


def test_random_pixel_cnn_exports_exactly_and_compactly(ee_offline, tmp_path):
    model = build_pixelcnn(len(CHANNELS))
    randomise_weights(model, 3)
    rng = np.random.default_rng(1)
    norm = {"mean": rng.uniform(0, 0.3, 8).tolist(), "std": rng.uniform(0.05, 0.2, 8).tolist()}
    folder = _artifact(tmp_path / "cnn", model, norm)
    report = export_model(folder)
    assert report.max_difference <= 1e-4
    assert report.checked_pixels == 18 * 18
    assert report.pairwise_convolutions == 8 * 16 + 16 * 32 + 40 * 64 + 72 * 128 + 128 * 2
    assert report.operations * 100 <= report.pairwise_convolutions
    saved = json.loads((folder / "earthengine" / "expression.json").read_text())
    functions = json.dumps(saved)
    assert "Image.neighborhoodToArray" in functions and "Image.convolve" not in functions
    assert report.outputs == ["probability_1", "probability_2", "class"]


def test_features_away_from_the_training_range_still_match(ee_offline, tmp_path):
    """A second, independent draw: large inputs drive many relus off and on."""
    model = build_pixelcnn(3, classes=4)
    randomise_weights(model, 11)
    steps = read_network(model, "m")
    image, _names = network_image(steps, ee_offline.Image(FEATURES_ID))
    features = np.random.default_rng(5).normal(scale=5.0, size=(3, 15, 21))
    out = _evaluate(image, features, ["a", "b", "c"])
    expected = model.predict(np.moveaxis(features, 0, -1)[None], verbose=0)[0]
    got = np.stack([b.data[3:-3, 3:-3] for b in out], axis=-1)
    assert got.shape == expected.shape == (9, 15, 4)
    np.testing.assert_allclose(got, expected, atol=1e-5)
    assert all(not b.mask[:3].any() and b.mask[3:-3, 3:-3].all() for b in out)


def test_kernel_orientation_follows_keras_rows_and_columns(ee_offline):
    """One weight at kernel row 0, column 2: the output at (y, x) is the input one row above
    and one column right, in the image's own row order, as Keras computes it."""
    import keras

    inputs = keras.Input((None, None, 1))
    conv = keras.layers.Conv2D(1, 3, use_bias=False)
    model = keras.Model(inputs, conv(inputs))
    kernel = np.zeros((3, 3, 1, 1), np.float32)
    kernel[0, 2, 0, 0] = 1.0
    conv.set_weights([kernel])
    features = np.arange(49, dtype=float).reshape(1, 7, 7)
    image, _ = network_image(read_network(model, "m"), ee_offline.Image(FEATURES_ID))
    (band,) = _evaluate(image, features, ["x"])
    np.testing.assert_array_equal(band.data[1:-1, 1:-1], features[0, :-2, 2:])
    keras_out = model.predict(features[..., None], verbose=0)[0, ..., 0]
    np.testing.assert_array_equal(band.data[1:-1, 1:-1], keras_out)


def test_outputs_are_masked_where_the_receptive_field_meets_masked_features(ee_offline):
    """As local classification does: only pixels whose whole 7 x 7 field is valid get an
    answer, and that answer is the network's on the unmasked values."""
    model = build_pixelcnn(2)
    randomise_weights(model, 6)
    image, _ = network_image(read_network(model, "m"), ee_offline.Image(FEATURES_ID))
    features = np.random.default_rng(2).normal(size=(2, 17, 17))
    mask = np.ones((2, 17, 17), bool)
    mask[1, 8, 8] = False  # one band of one pixel
    encoded = ee_offline.serializer.encode(image, for_cloud_api=True)
    out = evaluate(encoded, {FEATURES_ID: image_from_array(features, ["a", "b"], mask)})
    expected_valid = np.zeros((17, 17), bool)
    expected_valid[3:-3, 3:-3] = True
    expected_valid[5:12, 5:12] = False
    np.testing.assert_array_equal(out[0].mask, expected_valid)
    expected = model.predict(np.moveaxis(features, 0, -1)[None], verbose=0)[0, ..., 0]
    np.testing.assert_allclose(out[0].data[3, 3:-3], expected[0], atol=1e-5)


@pytest.mark.parametrize(
    ("layer", "message"),
    [
        ("same", "only valid convolutions of stride 1"),
        ("stride", "only valid convolutions of stride 1"),
        ("even", "kernel 2x2 is not an odd square"),
        ("dense", r"layer d \(Dense\) has no exact Earth Engine counterpart"),
        ("tanh", "activation 'tanh'"),
        ("offcentre", "only crops equal on all four sides"),
    ],
)
def test_layers_without_an_exact_counterpart_are_refused_by_name(layer, message):
    import keras
    from keras import layers

    inputs = keras.Input((None, None, 3))
    x = {
        "same": lambda: layers.Conv2D(4, 3, padding="same", name="c")(inputs),
        "stride": lambda: layers.Conv2D(4, 3, strides=2, name="c")(inputs),
        "even": lambda: layers.Conv2D(4, 2, name="c")(inputs),
        "dense": lambda: layers.Dense(4, name="d")(inputs),
        "tanh": lambda: layers.Conv2D(4, 3, activation="tanh", name="c")(inputs),
        "offcentre": lambda: layers.Cropping2D(((1, 0), (0, 1)), name="k")(inputs),
    }[layer]()
    with pytest.raises(ModelError, match=message):
        read_network(keras.Model(inputs, x), "models/m")


def test_branches_centred_on_different_pixels_are_refused():
    import keras
    from keras import layers

    inputs = keras.Input((None, None, 3))
    conv = layers.Conv2D(4, 3, name="c")(inputs)  # halo 1
    crop = layers.Cropping2D(1, name="k")(layers.Cropping2D(1, name="k0")(inputs))  # halo 2
    pad = layers.Cropping2D(0, name="k1")(layers.Conv2D(4, 3, name="c2")(conv))
    with pytest.raises(ModelError, match="not centred on the same pixel"):
        read_network(keras.Model(inputs, layers.Concatenate(name="j")([conv, crop])), "m")
    assert read_network(keras.Model(inputs, layers.Concatenate()([pad, crop])), "m")[-1].halo == 2


def test_only_pixel_cnn_artifacts_are_exported(ee_offline, tmp_path):
    model = build_pixelcnn(8)
    folder = _artifact(tmp_path / "r", model, kind="resnet")
    with pytest.raises(ModelError, match="a resnet model cannot be exported"):
        export_model(folder)


@pytest.mark.real
def test_the_published_water_gee_model_exports_exactly(ee_offline, tmp_path):
    source = REAL_DATA / "water_gee_model" / "Pixel-based CNN.h5"
    if not source.exists():
        pytest.skip(f"water_gee model not found at {source}")
    from watergee.models.legacy import import_water_gee

    folder = tmp_path / "water_gee"
    import_water_gee(source, folder)
    report = export_model(folder)
    assert report.max_difference <= 1e-4
    assert report.pairwise_convolutions == 12672  # the published converter's kernels
    assert report.operations * 100 <= report.pairwise_convolutions


def test_operation_count_counts_shared_expressions_once(ee_offline):
    ee = ee_offline
    base = ee.Image(FEATURES_ID).select(["a"])
    assert operation_count(base.add(base)) == 3  # load, select, add
    steps = read_network(build_pixelcnn(8), "m")
    assert pairwise_convolutions(steps) == 12672
