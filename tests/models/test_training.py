"""Training on a sample set drawn from the demo scene, where water is dark in NIR and SWIR."""

import json
import shutil

import joblib
import numpy as np
import pytest

from watergee.core.config import TrainSettings, load_settings
from watergee.core.errors import ModelError, TileInputError
from watergee.core.runner import completed
from watergee.models.artifact import load_keras_model, read_metadata
from watergee.models.training import sklearn_features, train
from watergee.sampleset import iter_samples, write_manifest
from watergee.sentinel2 import read_tiles
from watergee.stages.combine import combine
from watergee.stages.resample import resample
from watergee.stages.sample import sample


@pytest.fixture(scope="module")
def demo_samples(demo_scene, tmp_path_factory):
    root = tmp_path_factory.mktemp("train")
    tiles = read_tiles(demo_scene)
    settings = load_settings(None, [
        f"sample.labels={demo_scene.parent / 'truth'}", f"sample.work={root / 'work'}",
        "sample.classes={0: 2, 1: 1}", "sample.ignore=[]", "sample.quota=150",
        "sample.class_names={1: water, 2: land}",
    ])  # fmt: skip
    for tile in tiles:
        resample(tile, settings, root / "work")
        combine(tile, settings, root / "work")
        sample(tile, settings, root / "samples")
    write_manifest(completed(tiles), settings, root / "samples")
    return root / "samples"


def _validation(samples):
    shards = list(iter_samples(samples, "validation"))
    return np.concatenate([s["X"] for s in shards]), np.concatenate([s["y"] for s in shards])


@pytest.mark.parametrize("kind", ["rf", "svm"])
def test_sklearn_models_learn_water_and_reload(demo_samples, tmp_path, kind):
    settings = TrainSettings(rf_trees=40)
    lines: list[str] = []
    metadata = train(demo_samples, kind, tmp_path / kind, settings, report=lines.append)
    assert metadata.metrics["validation"]["overall_accuracy"] >= 0.98
    # Training-sample and validation figures side by side, naming how validation was held out.
    assert metadata.metrics["training"]["samples"] > metadata.metrics["validation"]["samples"]
    block = json.loads((demo_samples / "manifest.json").read_text())["block"]
    assert metadata.metrics["validation_split"] == f"held-out {block} px blocks"
    assert any(line.startswith("training samples: OA ") for line in lines)
    assert any(line.startswith(f"validation (held-out {block} px blocks): OA") for line in lines)
    assert [c.id for c in metadata.classes] == [1, 2] and metadata.classes[0].name == "water"
    assert metadata.channels[:4] == ["B02", "B03", "B04", "B08"]
    pipeline = joblib.load(tmp_path / kind / metadata.file)
    x, y = _validation(demo_samples)
    predicted = pipeline.predict(sklearn_features(x, "centre"))
    assert (predicted == y).mean() == metadata.metrics["validation"]["overall_accuracy"]
    assert read_metadata(tmp_path / kind) == metadata


def test_random_forest_is_reproducible(demo_samples, tmp_path):
    settings = TrainSettings(rf_trees=20, features="patch-stats")
    a = train(demo_samples, "rf", tmp_path / "a", settings, report=lambda _: None)
    b = train(demo_samples, "rf", tmp_path / "b", settings, report=lambda _: None)
    x, _ = _validation(demo_samples)
    features = sklearn_features(x, "patch-stats")
    assert features.shape[1] == 39  # 13 channels, their patch means and deviations
    np.testing.assert_array_equal(
        joblib.load(tmp_path / "a" / a.file).predict_proba(features),
        joblib.load(tmp_path / "b" / b.file).predict_proba(features),
    )


def test_pixelcnn_learns_water_with_stored_normalisation(demo_samples, tmp_path):
    lines = []
    settings = TrainSettings(epochs=4, batch_size=64)
    metadata = train(demo_samples, "pixelcnn", tmp_path / "cnn", settings, report=lines.append)
    assert (
        len([line for line in lines if line.startswith("epoch ")]) == metadata.metrics["epochs_run"]
    )
    assert metadata.metrics["validation"]["overall_accuracy"] >= 0.95
    assert metadata.patch == 7 and metadata.receptive_field == 7
    mean = np.array(metadata.normalization["mean"], np.float32)
    std = np.array(metadata.normalization["std"], np.float32)
    x, y = _validation(demo_samples)
    assert np.all(std > 0) and mean.shape == (13,)
    _, model = load_keras_model(tmp_path / "cnn")
    probabilities = model.predict((x - mean) / std, verbose=0)[:, 0, 0, :]
    predicted = np.array([1, 2])[probabilities.argmax(1)]
    assert (predicted == y).mean() == pytest.approx(
        metadata.metrics["validation"]["overall_accuracy"]
    )


def test_training_errors_name_the_sample_set(tmp_path, demo_samples):
    with pytest.raises(
        TileInputError, match=rf"{tmp_path}/manifest.json: not a readable sample-set"
    ):
        train(tmp_path, "rf", tmp_path / "m", TrainSettings())
    manifest = json.loads((demo_samples / "manifest.json").read_text())
    manifest["totals"]["train"] = {"1": 10}
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ModelError, match="two classes at least"):
        train(tmp_path, "rf", tmp_path / "m", TrainSettings())


@pytest.mark.parametrize("kind", ["dense-resnet", pytest.param("resnet", marks=pytest.mark.slow)])
def test_residual_networks_train(demo_samples, tmp_path, kind):
    settings = TrainSettings(
        epochs=3, batch_size=64, resnet_depth=11, dense_blocks=2, dense_width=16
    )
    metadata = train(demo_samples, kind, tmp_path / kind, settings, report=lambda _: None)
    assert metadata.metrics["validation"]["overall_accuracy"] >= 0.9
    assert metadata.receptive_field == 7  # 3 + 2 * 2 blocks; the 7 px sample patch
    _, model = load_keras_model(tmp_path / kind)
    assert model.count_params() > 0


def test_cnn_training_is_reproducible_on_cpu(demo_samples, tmp_path):
    settings = TrainSettings(epochs=2, batch_size=128)
    for name in ("a", "b"):
        train(demo_samples, "pixelcnn", tmp_path / name, settings, report=lambda _: None)
    _, a = load_keras_model(tmp_path / "a")
    _, b = load_keras_model(tmp_path / "b")
    for wa, wb in zip(a.get_weights(), b.get_weights(), strict=True):
        np.testing.assert_array_equal(wa, wb)


def test_forests_fit_augmented_copies_and_report_on_the_originals(demo_samples, tmp_path):
    lines: list[str] = []
    settings = TrainSettings(rf_trees=20, augment_copies=2)
    metadata = train(demo_samples, "rf", tmp_path / "rf", settings, report=lines.append)
    n = metadata.metrics["training"]["samples"]
    assert f"training rf on {n} samples + {2 * n} augmented copies, 13 features" in lines
    lines.clear()
    plain = TrainSettings(
        rf_trees=20, augment_copies=2, augment_gain=1.0, augment_haze=0, augment_jitter=0
    )
    train(demo_samples, "rf", tmp_path / "plain", plain, report=lines.append)
    assert f"training rf on {n} samples, 13 features" in lines


def test_cnns_train_on_augmented_patches(demo_samples, tmp_path):
    """Same seed, same samples: only the augmentation tells the two networks apart."""
    for name, gain, haze, jitter in (("augmented", 3.0, 0.1, 0.2), ("plain", 1.0, 0.0, 0.0)):
        settings = TrainSettings(
            epochs=1, batch_size=128, augment_gain=gain, augment_haze=haze, augment_jitter=jitter
        )
        train(demo_samples, "pixelcnn", tmp_path / name, settings, report=lambda _: None)
    _, a = load_keras_model(tmp_path / "augmented")
    _, b = load_keras_model(tmp_path / "plain")
    pairs = zip(a.get_weights(), b.get_weights(), strict=True)
    assert any(not np.array_equal(wa, wb) for wa, wb in pairs)


def test_a_class_seen_only_in_validation_is_named(demo_samples, tmp_path):
    copy = tmp_path / "samples"
    shutil.copytree(demo_samples, copy)
    manifest = json.loads((copy / "manifest.json").read_text())
    shard = copy / manifest["shards"]["validation"][0]
    arrays = dict(np.load(shard))
    arrays["y"][0] = 3
    with open(shard, "wb") as handle:
        np.savez(handle, **arrays)
    message = rf"{copy}: class 3 has validation samples but no training samples"
    # Found in the shards while training, and before training where the manifest counts it.
    for count in (0, 1):
        manifest["totals"]["validation"]["3"] = count
        (copy / "manifest.json").write_text(json.dumps(manifest))
        with pytest.raises(ModelError, match=message):
            train(copy, "pixelcnn", tmp_path / "cnn", TrainSettings(epochs=1), report=print)


def test_a_dense_network_weighs_each_sample_by_its_class():
    """Class weights reach the loss of a dense network's (n, 1, 1, classes) outputs."""
    import keras

    from watergee.models.fitting import gradient_step
    from watergee.models.pixelcnn import build_pixelcnn

    keras.utils.set_random_seed(1)
    model = build_pixelcnn(3, 2)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(4, 7, 7, 3)).astype(np.float32)
    y = np.eye(2, dtype=np.float32)[[0, 1, 1, 0]].reshape(4, 1, 1, 2)
    w = np.array([1, 2, 3, 4], np.float32).reshape(4, 1, 1)
    p = model(x).numpy()
    expected = -(w[:, 0, 0] * np.log((p * y).sum(axis=-1)[:, 0, 0])).sum() / 4
    step = gradient_step(model, keras.optimizers.SGD(0.0), (7, 7, 3), (1, 1, 2))
    assert float(step(x, y, w)) / 4 == pytest.approx(expected, rel=1e-5)
    # A weight on one sample alone gives that sample's loss (weights of shape (n,) would
    # give the batch's mean loss times the mean weight).
    losses = -np.log((p * y).sum(axis=-1)[:, 0, 0])
    for k in range(4):
        alone = np.zeros((4, 1, 1), np.float32)
        alone[k] = 4
        assert float(step(x, y, alone)) / 4 == pytest.approx(losses[k], rel=1e-5)


def test_band_factors_augment_networks_and_not_the_forests_copies(demo_samples):
    """A forest splits on one band at a time and lost sea with them (README)."""
    from watergee.models.training import open_sample_set, photometric_for

    samples = open_sample_set(demo_samples)
    settings = TrainSettings(augment_gain=2.0, augment_haze=0.0, augment_jitter=0.2)
    assert photometric_for(samples, settings, network=True).jitter == 0.2
    copies = photometric_for(samples, settings, network=False)
    assert copies.active and copies.jitter == 0
