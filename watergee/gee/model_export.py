"""`watergee gee export-model`: a model artifact's network as an Earth Engine expression,
proved exact on the spot against the Keras model before anything is written."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from watergee.core.atomic import atomic_path
from watergee.core.errors import ModelError
from watergee.gee.export import classified, network_image, operation_count
from watergee.gee.interpreter import evaluate, image_from_array
from watergee.gee.network import Step, pairwise_convolutions, read_network
from watergee.models.artifact import ModelMetadata, load_keras_model

#: The id the saved expression loads its features from; `gee predict` puts the composite there.
FEATURES_ID = "watergee/features"
FOLDER = "earthengine"
TOLERANCE = 1e-4


@dataclass
class ExportReport:
    model: str
    operations: int
    pairwise_convolutions: int
    max_difference: float
    checked_pixels: int
    outputs: list[str]
    expression: str


@dataclass(frozen=True)
class Network:
    """A model artifact read once: its metadata, the Keras model and its exportable steps."""

    metadata: ModelMetadata
    model: Any
    steps: list[Step]

    @property
    def bands(self) -> list[str]:
        """Names of the probability bands, one per class."""
        return [f"probability_{c.id}" for c in self.metadata.classes]

    def image(self, features: Any) -> Any:
        """The probabilities over `features` (the model's channels in order)."""
        image, _ = network_image(self.steps, features, self.metadata.normalization)
        return image.rename(self.bands)


def load_network(folder: Path) -> Network:
    metadata, model = load_keras_model(folder)
    if metadata.kind not in ("pixelcnn",):
        raise ModelError(f"{folder}: a {metadata.kind} model cannot be exported to Earth Engine "
                         "(only the pixel CNN is made of exportable layers)")  # fmt: skip
    return Network(metadata, model, read_network(model, str(folder)))


def model_image(folder: Path, features: Any) -> tuple[Any, ModelMetadata]:
    """The probabilities image of the model in `folder` over `features` (its channels in
    order); its bands are named probability_<class id>."""
    network = load_network(folder)
    return network.image(features), network.metadata


def local_difference(
    model: Any, metadata: ModelMetadata, encoded: dict, size: int = 24, seed: int = 0
) -> tuple[float, int]:
    """Largest |Keras - expression| over random features, evaluated locally; and how many
    pixels were compared (those with the network's full context)."""
    rng = np.random.default_rng(seed)
    channels = len(metadata.channels)
    normalised = rng.normal(size=(channels, size, size))  # what the network itself sees
    features = normalised
    if metadata.normalization is not None:
        mean = np.asarray(metadata.normalization["mean"])[:, None, None]
        std = np.asarray(metadata.normalization["std"])[:, None, None]
        features = normalised * std + mean
    halo = metadata.receptive_field // 2
    network_input = np.moveaxis(normalised, 0, -1)[None].astype(np.float32)
    expected = model.predict(network_input, verbose=0)[0]
    image = evaluate(encoded, {FEATURES_ID: image_from_array(features, metadata.channels)})
    inner = slice(halo, size - halo)
    worst = 0.0
    for k, band in enumerate(image[: expected.shape[-1]]):
        if not band.mask[inner, inner].all():
            raise ModelError("the exported expression masks pixels that have full context")
        worst = max(worst, float(np.max(np.abs(band.data[inner, inner] - expected[..., k]))))
    if len(image) > expected.shape[-1]:  # the class band: the most probable class's code
        codes = np.asarray([c.id for c in metadata.classes])[np.argmax(expected, axis=-1)]
        ranked = np.sort(expected, axis=-1)
        clear = ranked[..., -1] - ranked[..., -2] > 2 * TOLERANCE  # ties may go either way
        if np.any(image[-1].data[inner, inner][clear] != codes[clear]):
            worst = max(worst, 1.0)
    return worst, (size - 2 * halo) ** 2


def export_model(folder: Path) -> ExportReport:
    """Build the expression, check it locally, write it under `folder/earthengine/`."""
    import ee

    network = load_network(folder)
    probabilities = network.image(ee.Image(FEATURES_ID))
    classes = [c.id for c in network.metadata.classes]
    image = probabilities.addBands(classified(probabilities, classes))
    encoded = ee.serializer.encode(image, for_cloud_api=True)
    worst, pixels = local_difference(network.model, network.metadata, encoded)
    if not worst <= TOLERANCE:
        raise ModelError(f"{folder}: the Earth Engine expression differs from the model by "
                         f"{worst:.3g} (> {TOLERANCE}) on local evaluation")  # fmt: skip
    target = folder / FOLDER / "expression.json"
    with atomic_path(target) as tmp:
        tmp.write_text(json.dumps(encoded) + "\n")
    report = ExportReport(str(folder), operation_count(image),
                          pairwise_convolutions(network.steps), worst, pixels,
                          [*network.bands, "class"], str(target))  # fmt: skip
    with atomic_path(folder / FOLDER / "export.json") as tmp:
        tmp.write_text(json.dumps(asdict(report), indent=2) + "\n")
    return report
