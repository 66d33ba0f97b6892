"""Training models from a sample set on disk.

Normalisation statistics come from the training samples (never per tile, which would make tiles
disagree) and are stored in the artifact; rare classes are weighted up; the best epoch on the
validation samples is kept. CNNs use a GPU when TensorFlow sees one.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from watergee.core import layout
from watergee.core.atomic import atomic_path
from watergee.core.config import TrainSettings
from watergee.core.errors import ModelError
from watergee.metrics import RunningMoments
from watergee.models.artifact import (
    ModelMetadata,
    package_versions,
    write_metadata,
)
from watergee.models.augment import Photometric
from watergee.models.batches import SplitBatches
from watergee.models.fitting import gradient_step
from watergee.models.predictor import compiled_forward
from watergee.models.runtime import tensorflow
from watergee.sampleset import SampleSet

Report = Callable[[str], None]


def open_sample_set(root: Path) -> SampleSet:
    samples = SampleSet.open(root)
    if len(samples.classes) < 2:
        raise ModelError(
            f"{layout.sample_manifest(root)}: training needs samples of two classes at least"
        )
    return samples


def channel_statistics(samples: SampleSet) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel mean and standard deviation over every pixel of every training patch."""
    moments: RunningMoments | None = None
    for shard in samples.shards("train"):
        pixels = shard["X"].reshape(-1, shard["X"].shape[-1]).T  # channels x pixels
        moments = moments or RunningMoments(len(pixels))
        moments.add(pixels, np.ones(pixels.shape[1], bool))
    if moments is None:
        raise ModelError(f"{samples.root}: no training samples")
    std = moments.std
    return moments.mean.astype(np.float32), np.where(std > 0, std, 1).astype(np.float32)


def class_weights(samples: SampleSet, mode: str) -> np.ndarray:
    counts = np.array([samples.manifest["totals"]["train"][str(c)] for c in samples.classes], float)
    if mode == "none":
        return np.ones(len(counts))
    return counts.sum() / (len(counts) * counts)


def scores(truth: np.ndarray, predicted: np.ndarray, classes: list[int]) -> dict[str, Any]:
    """Overall accuracy, per-class F1 and the confusion matrix (rows: truth)."""
    from sklearn.metrics import confusion_matrix, f1_score

    if len(truth) == 0:
        return {}
    return {
        "overall_accuracy": float((truth == predicted).mean()),
        "f1": {
            str(c): float(f)
            for c, f in zip(
                classes,
                f1_score(truth, predicted, labels=classes, average=None, zero_division=0),
                strict=True,
            )
        },
        "confusion": confusion_matrix(truth, predicted, labels=classes).tolist(),
        "samples": len(truth),
    }


def held_out(samples: SampleSet) -> str:
    """How the sample set's validation samples were held out, for reports."""
    if samples.manifest.get("split") == "blocks":
        return f"held-out {samples.manifest['block']} px blocks"
    return "pixels held out at random"


def report_scores(metrics: dict[str, Any], samples: SampleSet, report: Report) -> None:
    """Training-sample and validation figures side by side: their gap is the overfitting a
    pixel-wise validation hides."""
    names = {c.id: c.name for c in samples.class_infos()}
    report(f"training samples: {_describe_scores(metrics['training'], names)}")
    report(f"validation ({held_out(samples)}): {_describe_scores(metrics['validation'], names)}")


def _describe_scores(result: dict[str, Any], names: dict[int, str]) -> str:
    if not result:
        return "no validation samples"
    f1 = " ".join(f"{names.get(int(c)) or c} {v:.3f}" for c, v in result["f1"].items())
    return f"OA {result['overall_accuracy']:.3f}  F1 {f1}"


def photometric_for(samples: SampleSet, settings: TrainSettings, network: bool) -> Photometric:
    """The augmentation of a network's patches, or of a forest's or SVM's copies, which get no
    band factors: the random forest, splitting on one feature at a time, lost sea with them
    (see README)."""
    names = list(samples.manifest["bands"])
    jitter = settings.augment_jitter if network else 0.0
    return Photometric.for_channels(names, settings.augment_gain, settings.augment_haze, jitter)


# --- scikit-learn ----------------------------------------------------------------------------


def sklearn_features(x: np.ndarray, recipe: str) -> np.ndarray:
    """Per-sample features: the sample pixel's channels (+ patch mean and std)."""
    half = x.shape[1] // 2
    centre = x[:, half, half, :]
    if recipe == "centre":
        return centre
    flat = x.reshape(len(x), -1, x.shape[-1])
    return np.concatenate([centre, flat.mean(1), flat.std(1)], axis=1)


def _load_split(samples: SampleSet, split: str, recipe: str) -> tuple[np.ndarray, np.ndarray]:
    xs, ys = [], []
    for shard in samples.shards(split):
        xs.append(sklearn_features(shard["X"], recipe))
        ys.append(shard["y"].astype(np.int64))
    if not xs:
        return np.empty((0, 0)), np.empty(0, np.int64)
    return np.concatenate(xs), np.concatenate(ys)


def _augmented_copies(
    samples: SampleSet, settings: TrainSettings
) -> tuple[np.ndarray, np.ndarray] | None:
    """`train.augment_copies` augmented features of every training sample; None when
    augmentation is off."""
    photometric = photometric_for(samples, settings, network=False)
    if not photometric.active or not settings.augment_copies:
        return None
    rng = np.random.default_rng(settings.seed)
    xs, ys = [], []
    for shard in samples.shards("train"):
        for _ in range(settings.augment_copies):
            xs.append(sklearn_features(photometric(shard["X"], rng), settings.features))
            ys.append(shard["y"].astype(np.int64))
    return np.concatenate(xs), np.concatenate(ys)


def train_sklearn(
    samples: SampleSet, kind: str, out: Path, settings: TrainSettings, report: Report
) -> ModelMetadata:
    import joblib
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC

    x, y = _load_split(samples, "train", settings.features)
    fit_x, fit_y = x, y
    described = f"{len(y)} samples"
    copies = _augmented_copies(samples, settings)
    if copies is not None:
        fit_x, fit_y = np.concatenate([x, copies[0]]), np.concatenate([y, copies[1]])
        described += f" + {len(copies[1])} augmented copies"
    weighting = "balanced" if settings.class_weights == "balanced" else None
    if kind == "svm":
        if len(fit_y) > settings.svm_max_samples:
            described = f"{settings.svm_max_samples} drawn from {described}"
            keep = np.random.default_rng(settings.seed).choice(
                len(fit_y), settings.svm_max_samples, replace=False
            )
            fit_x, fit_y = fit_x[keep], fit_y[keep]
        estimator = SVC(
            C=settings.svm_c, gamma="scale", class_weight=weighting, random_state=settings.seed
        )
    else:
        estimator = RandomForestClassifier(
            n_estimators=settings.rf_trees,
            max_depth=settings.rf_max_depth,
            class_weight=weighting,
            n_jobs=-1,
            random_state=settings.seed,
        )
    pipeline = make_pipeline(StandardScaler(), estimator)
    report(f"training {kind} on {described}, {x.shape[1]} features")
    pipeline.fit(fit_x, fit_y)
    vx, vy = _load_split(samples, "validation", settings.features)
    metrics = {
        "training": scores(y, pipeline.predict(x), samples.classes),
        "validation": scores(vy, pipeline.predict(vx), samples.classes) if len(vy) else {},
    }
    report_scores(metrics, samples, report)
    out.mkdir(parents=True, exist_ok=True)
    with atomic_path(out / "model.joblib") as tmp:
        joblib.dump(pipeline, tmp)
    patch = samples.manifest["patch"]
    metadata = _metadata(
        samples,
        kind,
        "model.joblib",
        patch,
        1 if settings.features == "centre" else patch,
        None,
        metrics,
    )
    metadata.features["sklearn"] = settings.features
    write_metadata(out, metadata)
    return metadata


# --- Keras -----------------------------------------------------------------------------------


def _centre_crop(x: np.ndarray, size: int) -> np.ndarray:
    """Patches cut to `size` around their sample pixel (offset patch // 2 in both)."""
    start = x.shape[1] // 2 - size // 2
    return x[:, start : start + size, start : start + size, :]


def _network(kind: str, samples: SampleSet, channels: int, classes: int, settings: TrainSettings):
    """(model, input patch side, receptive field, dense) for a Keras model kind."""
    from watergee.models.pixelcnn import PATCH, build_pixelcnn
    from watergee.models.resnet import build_dense_resnet, build_resnet, dense_receptive_field

    if kind == "pixelcnn":
        return build_pixelcnn(channels, classes), PATCH, PATCH, True
    if kind == "dense-resnet":
        field = dense_receptive_field(settings.dense_blocks)
        model = build_dense_resnet(channels, classes, settings.dense_blocks, settings.dense_width)
        return model, field, field, True
    patch = samples.manifest["patch"]
    model = build_resnet(patch, channels, classes, settings.resnet_depth, settings.resnet_kernel)
    return model, patch, patch, False


def train_keras(
    samples: SampleSet, kind: str, out: Path, settings: TrainSettings, report: Report
) -> ModelMetadata:
    tensorflow()
    import keras

    keras.utils.set_random_seed(settings.seed)
    if settings.mixed_precision:
        keras.mixed_precision.set_global_policy("mixed_float16")
    classes = samples.classes
    channels = len(samples.manifest["bands"])
    model, patch, field, dense = _network(kind, samples, channels, len(classes), settings)
    if samples.manifest["patch"] < patch:
        raise ModelError(
            f"{samples.root}: patch {samples.manifest['patch']} < {patch} needed by {kind}"
        )
    totals = samples.manifest["totals"]["validation"]
    _refuse_unseen([int(c) for c, n in totals.items() if n], classes, samples)
    mean, std = channel_statistics(samples)
    weights = class_weights(samples, settings.class_weights).astype(np.float32)
    target = (1, 1, len(classes)) if dense else (len(classes),)

    def targets(ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        _refuse_unseen(ids, classes, samples)  # shards holding what the manifest does not count
        y = np.searchsorted(classes, ids)
        onehot = np.eye(len(classes), dtype=np.float32)[y].reshape(len(y), *target)
        return onehot, weights[y].reshape(len(y), *target[:-1])  # one weight per output pixel

    def batches(split: str) -> SplitBatches:
        return SplitBatches(
            samples,
            split,
            settings.batch_size,
            cut=lambda x: _centre_crop(x, patch),
            normalise=lambda x: (x - mean) / std,
            targets=targets,
            buffer=settings.shuffle_buffer,
        )

    train_batches = batches("train")
    validation = batches("validation") if samples.count("validation") > 0 else None
    optimizer = keras.optimizers.Adam(settings.learning_rate)
    if settings.mixed_precision:
        optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
    step = gradient_step(model, optimizer, (patch, patch, channels), target)
    forward = compiled_forward(model)
    photometric = photometric_for(samples, settings, network=True)
    rng = np.random.default_rng(settings.seed)
    names = {c.id: c.name for c in samples.class_infos()}
    history: list[dict[str, float]] = []
    best: tuple[float, list[np.ndarray]] | None = None
    for epoch in range(settings.epochs):
        total = 0.0
        for x, y, w in train_batches.epoch(rng, photometric):
            total += step(x, y, w)
        logs = {"loss": float(total) / len(train_batches)}
        line = f"epoch {epoch + 1}/{settings.epochs}: loss {logs['loss']:.4f}"
        if validation is not None:
            result, logs["val_loss"] = _evaluate(forward, validation, classes)
            line += f" val_loss {logs['val_loss']:.4f}  " + _describe_scores(result, names)
        history.append(logs)
        report(line)
        monitored = logs.get("val_loss", logs["loss"])
        if best is None or monitored < best[0]:
            best, waited = (monitored, model.get_weights()), 0
        else:
            waited += 1
            if waited >= settings.patience:
                break
    assert best is not None
    model.set_weights(best[1])
    metrics: dict[str, Any] = {"history": history, "epochs_run": len(history)}
    metrics["training"] = _evaluate(forward, train_batches, classes)[0]
    metrics["validation"] = _evaluate(forward, validation, classes)[0] if validation else {}
    report_scores(metrics, samples, report)
    out.mkdir(parents=True, exist_ok=True)
    with atomic_path(out / "model.keras") as tmp:
        model.save(tmp)
    normalization = {"mean": mean.tolist(), "std": std.tolist()}
    metadata = _metadata(samples, kind, "model.keras", patch, field, normalization, metrics)
    metadata.features["architecture"] = {
        "pixelcnn": "water_gee pixel CNN",
        "dense-resnet": f"dense ResNet, {settings.dense_blocks} blocks, width "
        f"{settings.dense_width}",
        "resnet": f"pre-activation bottleneck ResNet-{settings.resnet_depth}, "
        f"{settings.resnet_kernel}x{settings.resnet_kernel} kernels",
    }[kind]
    write_metadata(out, metadata)
    return metadata


def _refuse_unseen(ids: Any, classes: list[int], samples: SampleSet) -> None:
    """A network has no output for a class without training samples: name the first one."""
    unseen = np.setdiff1d(ids, classes)
    if len(unseen):
        raise ModelError(
            f"{samples.root}: class {int(unseen[0])} has validation samples but no training samples"
        )


def _evaluate(
    forward: Any, batches: SplitBatches, classes: list[int]
) -> tuple[dict[str, Any], float]:
    """Scores of the network on a split, and its weighted cross-entropy per sample (Keras'
    validation loss)."""
    truth, predicted, loss = [], [], 0.0
    for x, y, w in batches.epoch():
        probabilities = forward(x).reshape(len(x), -1).astype(np.float64)
        onehot = y.reshape(len(x), -1)
        picked = np.clip((probabilities * onehot).sum(axis=1), 1e-7, 1.0)
        loss -= float((w.reshape(len(x)) * np.log(picked)).sum())
        truth.append(onehot.argmax(axis=1))
        predicted.append(probabilities.argmax(axis=1))
    lookup = np.array(classes)
    result = scores(lookup[np.concatenate(truth)], lookup[np.concatenate(predicted)], classes)
    return result, loss / len(batches)


def _metadata(
    samples: SampleSet,
    kind: str,
    file: str,
    patch: int,
    field: int,
    normalization: dict[str, list[float]] | None,
    metrics: dict[str, Any],
) -> ModelMetadata:
    manifest = samples.manifest
    return ModelMetadata(
        kind=kind,  # type: ignore[arg-type]
        file=file,
        channels=list(manifest["bands"]),
        scaling=manifest.get("values", ""),
        features={"bands": list(manifest["bands"]), "band_scaling": manifest.get("scaling")},
        patch=patch,
        receptive_field=field,
        classes=samples.class_infos(),
        normalization=normalization,
        metrics={**metrics, "validation_split": held_out(samples)},
        samples=samples.provenance(),
        versions=package_versions(),
    )


def train(
    samples_root: Path, kind: str, out: Path, settings: TrainSettings, report: Report = print
) -> ModelMetadata:
    samples = open_sample_set(samples_root)
    if kind in ("svm", "rf"):
        return train_sklearn(samples, kind, out, settings, report)
    if kind in ("pixelcnn", "dense-resnet", "resnet"):
        return train_keras(samples, kind, out, settings, report)
    raise ModelError(f"unknown model kind {kind!r}")
