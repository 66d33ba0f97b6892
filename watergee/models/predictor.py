"""Predictors: one interface over every model kind, for windows of a tile or for patches.

A predictor takes features read with `halo` pixels of context around a window and returns
class probabilities for the window's pixels. Valid-convolution CNNs run once on the whole
window; patch models cut every pixel's patch with the training centre convention; scikit-learn
pipelines take per-pixel features (with patch statistics computed by uniform filters).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from scipy import ndimage

from watergee.core.errors import ModelError
from watergee.models.artifact import (
    ModelMetadata,
    load_keras_model,
    read_metadata,
    require_weights_fit,
)
from watergee.models.runtime import tensorflow

DENSE_KINDS = ("pixelcnn", "dense-resnet")


def compiled_forward(model: Any) -> Callable[[np.ndarray], np.ndarray]:
    """The Keras network as one TensorFlow graph for inputs of any batch and size: graph mode
    fuses convolution, bias and activation and runs about twice as fast as eager calls."""
    tf = tensorflow()
    spec = tf.TensorSpec((None, *model.input_shape[1:]), tf.float32)
    graph = tf.function(lambda x: model(x, training=False), input_signature=[spec])
    return lambda x: graph(tf.constant(x, tf.float32)).numpy()


def in_precision(model: Any, precision: str) -> Any:
    """The network computing in `precision`: itself when it already does; else a copy with the
    same weights whose layers run in float32 or under Keras' mixed policy (weights stored in
    float32, cast for each product). A mixed copy's softmax runs in float32: in 16 bits it
    would round the probabilities to 2 or 3 digits. A network trained with
    `train.mixed_precision` is saved with mixed layers: float32 rebuilds it in float32."""
    full = precision == "float32"
    if full and all(layer.dtype_policy.name == "float32" for layer in model.layers):
        return model
    tensorflow()
    import keras

    head = next(layer for layer in model.layers if layer.output is model.output)
    softmax = not full and head.get_config().get("activation") == "softmax"

    def rebuilt(layer: Any) -> Any:
        config = {**layer.get_config(), "dtype": "float32" if full else f"mixed_{precision}"}
        if softmax and layer is head:
            config["activation"] = "linear"  # moved to the float32 layer below
        return layer.__class__.from_config(config)

    copy = keras.models.clone_model(model, clone_function=rebuilt)
    copy.set_weights(model.get_weights())
    if full:
        return copy
    activation = "softmax" if softmax else "linear"
    outputs = keras.layers.Activation(activation, dtype="float32", name="float32")(copy.output)
    return keras.Model(copy.inputs, outputs, name=f"{model.name}_{precision}")


@dataclass
class Predictor:
    metadata: ModelMetadata
    model: Any
    batch_size: int = 4096
    threads: int = 0  # threads of a forest's prediction; 0: all CPUs
    precision: str = "float32"  # a network's arithmetic: float32, bfloat16 or float16

    @cached_property
    def forward(self) -> Callable[[np.ndarray], np.ndarray]:
        return compiled_forward(in_precision(self.model, self.precision))

    @property
    def field(self) -> int:
        """Side of the neighbourhood one prediction reads."""
        return self.metadata.receptive_field

    @property
    def halo(self) -> int:
        return self.field // 2

    @property
    def classes(self) -> list[int]:
        return [c.id for c in self.metadata.classes]

    def _normalise(self, x: np.ndarray) -> np.ndarray:
        norm = self.metadata.normalization
        if norm is None:
            return x
        return (x - np.asarray(norm["mean"], np.float32)) / np.asarray(norm["std"], np.float32)

    def window(self, features: np.ndarray, height: int, width: int) -> np.ndarray:
        """Probabilities (height, width, classes) from features (channels, height + 2 halo,
        width + 2 halo); no-data features must already be replaced by numbers."""
        x = np.moveaxis(features, 0, -1)
        kind = self.metadata.kind
        if kind in DENSE_KINDS:
            out = self.forward(self._normalise(x)[None])
            return out[0, :height, :width]
        if kind == "resnet":
            p = self.field
            views = sliding_window_view(self._normalise(x), (p, p), axis=(0, 1))[:height, :width]
            patches = np.moveaxis(views, 2, -1).reshape(-1, p, p, x.shape[-1])
            return self.patches(patches, normalised=True).reshape(height, width, -1)
        return self._pixels(features, height, width)

    def _pixels(self, features: np.ndarray, height: int, width: int) -> np.ndarray:
        h = self.halo
        centre = features[:, h : h + height, h : h + width]
        columns = [centre.reshape(len(centre), -1).T]
        if self.metadata.features.get("sklearn") == "patch-stats":
            size = self.metadata.patch
            mean = ndimage.uniform_filter(
                features.astype(np.float64), size=(1, size, size), mode="nearest"
            )
            square = ndimage.uniform_filter(
                features.astype(np.float64) ** 2, size=(1, size, size), mode="nearest"
            )
            std = np.sqrt(np.maximum(square - mean**2, 0))
            for stat in (mean, std):
                inner = stat[:, h : h + height, h : h + width]
                columns.append(inner.reshape(len(inner), -1).T)
        return self._sklearn(np.concatenate(columns, axis=1)).reshape(height, width, -1)

    def _sklearn(self, table: np.ndarray) -> np.ndarray:
        """Per-pixel probabilities of a scikit-learn model, in threads chosen here: joblib's
        own choice inside a (daemonic) Dask worker process is one thread and a warning per
        call."""
        import joblib

        with joblib.parallel_config(backend="threading", n_jobs=self.threads or -1):
            return self._sklearn_batches(table)

    def _sklearn_batches(self, table: np.ndarray) -> np.ndarray:
        out = np.empty((len(table), len(self.classes)), np.float32)
        for start in range(0, len(table), self.batch_size):
            rows = table[start : start + self.batch_size]
            if hasattr(self.model, "predict_proba"):  # absent on an SVM without probabilities
                out[start : start + len(rows)] = self.model.predict_proba(rows)
            else:  # an SVM without probabilities: its decision, one-hot
                predicted = self.model.predict(rows)
                out[start : start + len(rows)] = predicted[:, None] == np.array(self.classes)
        return out

    def patches(self, patches: np.ndarray, normalised: bool = False) -> np.ndarray:
        """Probabilities (n, classes) of patches (n, field, field, channels)."""
        kind = self.metadata.kind
        if kind not in (*DENSE_KINDS, "resnet"):
            half = patches.shape[1] // 2
            features = np.moveaxis(patches, -1, 1)  # n, channels, p, p
            if self.metadata.features.get("sklearn") == "patch-stats":
                flat = features.reshape(len(features), features.shape[1], -1)
                table = np.concatenate(
                    [features[:, :, half, half], flat.mean(2), flat.std(2)], axis=1
                )
            else:
                table = features[:, :, half, half]
            return self._sklearn(table)
        x = patches if normalised else self._normalise(patches)
        out = np.empty((len(x), len(self.classes)), np.float32)
        for start in range(0, len(x), self.batch_size):
            result = self.forward(x[start : start + self.batch_size])
            out[start : start + len(result)] = result.reshape(len(result), -1)
        return out

    def bytes_per_pixel(self) -> int:
        """Rough memory one window pixel costs during prediction."""
        channels = len(self.metadata.channels)
        if self.metadata.kind in DENSE_KINDS:
            widths = sum(int(layer.output.shape[-1]) for layer in self.model.layers)
            return 4 * (channels + widths) * 2
        if self.metadata.kind == "resnet":
            return 4 * channels * self.field**2 + 256
        return 4 * channels * 8 + 256


def load_predictor(
    folder: Path, batch_size: int = 4096, threads: int = 0, precision: str = "float32"
) -> Predictor:
    metadata = read_metadata(folder)
    path = folder / metadata.file
    if metadata.kind in (*DENSE_KINDS, "resnet"):
        _, model = load_keras_model(folder)
        require_weights_fit(path, model.inputs[0].shape[-1], metadata)
    else:
        model = _load_sklearn(path)
        for step in getattr(model, "steps", [(None, model)]):
            if hasattr(step[1], "n_jobs"):  # the predictor's threads decide, not the saved -1
                step[1].n_jobs = None
        per_channel = 3 if metadata.features.get("sklearn") == "patch-stats" else 1
        if (inputs := getattr(model, "n_features_in_", None)) is not None:
            require_weights_fit(path, inputs // per_channel, metadata)
    return Predictor(metadata, model, batch_size, threads, precision)


def _load_sklearn(path: Path) -> Any:
    """A fitted scikit-learn model; anything that is not one is an error naming the file."""
    import joblib

    try:
        model = joblib.load(path)
    except Exception as exc:  # unpickling foreign bytes raises almost anything
        reason = " ".join(str(exc).split()) or type(exc).__name__
        raise ModelError(f"{path}: not a readable scikit-learn model ({reason[:160]})") from None
    if not hasattr(model, "predict"):
        raise ModelError(f"{path}: not a scikit-learn model ({type(model).__name__})")
    return model
