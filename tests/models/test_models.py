"""Model builders and artifacts: parameter counts, legacy import against an independent
numpy forward pass, and dense whole-image inference equal to per-patch inference."""

import csv
import json

import numpy as np
import pytest
from numpy.lib.stride_tricks import sliding_window_view

from tests.conftest import randomise_weights
from watergee.core.errors import ModelError
from watergee.models.artifact import check_channels, load_keras_model, read_metadata
from watergee.models.pixelcnn import build_pixelcnn

LEGACY = "water_gee_model/Pixel-based CNN.h5"


def test_pixelcnn_has_the_published_parameter_count():
    assert build_pixelcnn(8).count_params() == 38514
    assert build_pixelcnn(10, classes=3).count_params() != 38514


def _conv(x, kernel, bias, relu=True):
    """Valid convolution (cross-correlation, HWIO kernel) of (N, H, W, C) in numpy."""
    kh, kw = kernel.shape[:2]
    windows = sliding_window_view(x, (kh, kw), axis=(1, 2))  # N, H', W', C, kh, kw
    out = np.einsum("nhwcij,ijco->nhwo", windows, kernel, optimize=True) + bias
    return np.maximum(out, 0) if relu else out


def _numpy_forward(x, w):
    """water_gee's network from its raw HDF5 weights, written out independently."""
    a = _conv(x, *w["conv2d"])
    a = _conv(a, *w["conv2d_1"])
    a = np.concatenate([a, x[:, 2:-2, 2:-2, :]], axis=-1)
    a = _conv(a, *w["conv2d_2"])
    a = np.concatenate([a, x[:, 3:-3, 3:-3, :]], axis=-1)
    a = _conv(a, *w["conv2d_3"])
    logits = _conv(a, *w["conv2d_4"], relu=False)
    e = np.exp(logits - logits.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


@pytest.fixture(scope="module")
def legacy_model(tmp_path_factory):
    from tests.conftest import REAL_DATA

    source = REAL_DATA / LEGACY
    if not source.exists():
        pytest.skip(f"water_gee model not found at {source}")
    from watergee.models.legacy import import_water_gee

    folder = tmp_path_factory.mktemp("models") / "water_gee"
    import_water_gee(source, folder)
    return source, folder


@pytest.mark.real
def test_imported_water_gee_model_equals_a_numpy_forward_pass(legacy_model):
    import h5py

    source, folder = legacy_model
    with h5py.File(source, "r") as f:
        weights = {
            name: (
                f[f"model_weights/{name}/{name}/kernel:0"][()],
                f[f"model_weights/{name}/{name}/bias:0"][()],
            )
            for name in ("conv2d", "conv2d_1", "conv2d_2", "conv2d_3", "conv2d_4")
        }
    metadata, model = load_keras_model(folder)
    assert metadata.channels[5:] == ["MNDWI", "LINE", "DEM/4000"]
    assert [c.name for c in metadata.classes] == ["water", "non-water"]
    rng = np.random.default_rng(0)
    patches = rng.uniform(-0.2, 0.6, (256, 7, 7, 8)).astype(np.float32)
    ours = model.predict(patches, verbose=0)[:, 0, 0, :]
    theirs = _numpy_forward(patches.astype(np.float64), weights)[:, 0, 0, :]
    np.testing.assert_allclose(ours, theirs, atol=1e-5)


@pytest.mark.real
def test_real_landsat8_samples_classify_as_labelled(legacy_model, real_data):
    _, folder = legacy_model
    _, model = load_keras_model(folder)
    with open(real_data / "spyndex_landsat8_samples" / "spectral.csv") as handle:
        rows = list(csv.DictReader(handle))
    b, g, r, n, s = (np.array([float(row[f"SR_B{i}"]) for row in rows]) for i in (2, 3, 4, 5, 6))
    mndwi = (g - s) / (g + s)
    # A uniform 7 x 7 neighbourhood: the line filter of a constant image is 0; elevation 0.
    features = np.stack([b, g, r, n, s, mndwi, np.zeros_like(b), np.zeros_like(b)], axis=-1)
    patches = np.repeat(np.repeat(features[:, None, None, :], 7, 1), 7, 2).astype(np.float32)
    probabilities = model.predict(patches, verbose=0)[:, 0, 0, :]
    water = probabilities[:, 0] > probabilities[:, 1]
    truth = np.array([row["class"] == "Water" for row in rows])
    assert truth.sum() == 37
    assert (water == truth).all(), (water[truth].mean(), water[~truth].mean())


def test_dense_inference_equals_patch_inference():
    """The whole image at once gives, at every pixel, the 7 x 7 patch centred there."""
    model = build_pixelcnn(5, classes=3)
    rng = np.random.default_rng(1)
    for layer in model.layers:
        if layer.get_weights():
            layer.set_weights(
                [rng.normal(0, 0.5, w.shape).astype(np.float32) for w in layer.get_weights()]
            )
    image = rng.normal(size=(1, 23, 31, 5)).astype(np.float32)
    dense = model.predict(image, verbose=0)[0]
    assert dense.shape == (17, 25, 3)
    patches = sliding_window_view(image[0], (7, 7), axis=(0, 1))  # 17, 25, C, 7, 7
    patches = np.moveaxis(patches, 2, -1).reshape(-1, 7, 7, 5)
    per_patch = model.predict(patches, verbose=0)[:, 0, 0, :].reshape(17, 25, 3)
    np.testing.assert_allclose(dense, per_patch, atol=1e-5)


def test_artifact_errors_name_the_file(tmp_path):
    with pytest.raises(ModelError, match=rf"{tmp_path}/absent: model folder not found"):
        read_metadata(tmp_path / "absent")
    folder = tmp_path / "m"
    folder.mkdir()
    with pytest.raises(ModelError, match=rf"{folder}/model.json: model metadata missing"):
        read_metadata(folder)
    (folder / "model.json").write_text(json.dumps({"kind": "pixelcnn"}))
    with pytest.raises(ModelError, match=r"model.json: 'file': Field required"):
        read_metadata(folder)


@pytest.mark.real
def test_channel_mismatch_names_both(legacy_model):
    _, folder = legacy_model
    metadata = read_metadata(folder)
    with pytest.raises(
        ModelError, match=r"tile\.tif: channels B02, B03 do not match model m \(blue,"
    ):
        check_channels(metadata, ["B02", "B03"], "tile.tif", "m")


def test_dense_resnet_whole_image_equals_its_patches():
    from watergee.models.resnet import build_dense_resnet, dense_receptive_field

    field = dense_receptive_field(3)
    assert field == 9
    model = build_dense_resnet(4, classes=3, blocks=3, width=8)
    randomise_weights(model, 2)
    rng = np.random.default_rng(3)
    image = rng.normal(size=(1, 40, 33, 4)).astype(np.float32)
    dense = model.predict(image, verbose=0)[0]
    assert dense.shape == (40 - field + 1, 33 - field + 1, 3)
    windows = sliding_window_view(image[0], (field, field), axis=(0, 1))
    patches = np.moveaxis(windows, 2, -1).reshape(-1, field, field, 4)
    per_patch = model.predict(patches, verbose=0)[:, 0, 0, :].reshape(dense.shape)
    np.testing.assert_allclose(dense, per_patch, atol=1e-5)


def test_resnet29_shape_and_parameters():
    from watergee.models.resnet import build_resnet

    model = build_resnet(12, 10, 12)
    assert model.output_shape == (None, 12)
    convs = [layer for layer in model.layers if type(layer).__name__ == "Conv2D"]
    assert len(convs) == 1 + 9 * 3 + 3  # stem, 9 bottlenecks of 3, 3 projection shortcuts
    assert [c.kernel_size for c in convs[:4]] == [(5, 5), (1, 1), (5, 5), (1, 1)]
    assert model.count_params() == 1_848_412
    with pytest.raises(ValueError, match="9n \\+ 2"):
        build_resnet(12, 10, 12, depth=30)


def _forest_probabilities_in_a_worker_process(folder):
    import warnings

    from watergee.models.predictor import load_predictor

    predictor = load_predictor(folder, batch_size=64, threads=2)
    table = np.random.default_rng(0).random((500, len(predictor.metadata.channels)))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        probabilities = predictor._sklearn(table)
    return probabilities.shape, [str(w.message) for w in caught]


def test_a_forest_predicts_in_a_dask_worker_process_without_warnings(tmp_path):
    """joblib inside a daemonic Dask worker falls back to one thread with a warning per call;
    the predictor picks its threads itself."""
    import joblib
    from distributed import Client, LocalCluster

    from tests.stages.test_classify import _forest

    folder, _, _ = _forest(tmp_path, "centre")
    pipeline = joblib.load(folder / "model.joblib")
    pipeline[-1].n_jobs = -1  # as `watergee train` builds its forests
    joblib.dump(pipeline, folder / "model.joblib")
    with (
        LocalCluster(n_workers=1, processes=True, dashboard_address=":0") as cluster,
        Client(cluster) as client,
    ):
        shape, caught = client.submit(_forest_probabilities_in_a_worker_process, folder).result()
    assert shape[0] == 500 and caught == []


@pytest.mark.parametrize("precision", ["bfloat16", "float16"])
def test_a_network_in_mixed_precision_keeps_its_weights_and_gives_float32(precision):
    from watergee.models.predictor import compiled_forward, in_precision

    model = build_pixelcnn(5, classes=2)
    assert in_precision(model, "float32") is model
    mixed = in_precision(model, precision)
    inner = [layer for layer in mixed.layers[:-1] if type(layer).__name__ != "InputLayer"]
    assert {type(layer).__name__ for layer in inner} == {"Conv2D", "Concatenate", "Cropping2D"}
    assert {layer.compute_dtype for layer in inner} == {precision}
    assert mixed.layers[-1].compute_dtype == "float32"  # the softmax, in full precision
    assert all(w.dtype == "float32" for w in mixed.weights)
    for a, b in zip(model.get_weights(), mixed.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    image = np.random.default_rng(2).normal(size=(1, 20, 20, 5)).astype(np.float32)
    out = compiled_forward(mixed)(image)
    assert out.dtype == np.float32 and out.shape == (1, 14, 14, 2)
    np.testing.assert_allclose(out, compiled_forward(model)(image), atol=0.02)
    np.testing.assert_allclose(out.sum(-1), 1, atol=1e-6)  # a float32 softmax, not rounded


def test_a_network_trained_in_mixed_precision_classifies_in_float32_when_asked():
    import keras

    from watergee.models.predictor import compiled_forward, in_precision

    keras.mixed_precision.set_global_policy("mixed_float16")  # as train.mixed_precision does
    try:
        trained = build_pixelcnn(5, classes=2)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    plain = build_pixelcnn(5, classes=2)
    plain.set_weights(trained.get_weights())
    full = in_precision(trained, "float32")
    assert {layer.compute_dtype for layer in full.layers} == {"float32"}
    image = np.random.default_rng(3).normal(size=(1, 20, 20, 5)).astype(np.float32)
    np.testing.assert_array_equal(compiled_forward(full)(image), compiled_forward(plain)(image))
