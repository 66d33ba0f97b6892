"""Import a pixel CNN saved by the water_gee notebooks (Keras 2 HDF5).

Keras 3 cannot load those files (their slices are TensorFlow-op layers), so the weights are read
with h5py and placed into our identical pixel CNN; the model's input recipe is water_gee's.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

from watergee.core.atomic import atomic_path
from watergee.core.errors import ModelError
from watergee.models.artifact import ClassInfo, ModelMetadata, package_versions, write_metadata
from watergee.models.pixelcnn import HALO, LEGACY_LAYERS, PATCH, build_pixelcnn

WATER_GEE_CHANNELS = ["blue", "green", "red", "nir", "swir1", "MNDWI", "LINE", "DEM/4000"]
WATER_GEE_SCALING = (
    "Landsat 8/9 Collection 2 Level 2 surface reflectance (DN * 0.0000275 - 0.2) for blue, "
    "green, red, nir, swir1 (SR_B2..SR_B6); MNDWI = (green - swir1) / (green + swir1); LINE = "
    "max of four directional 5x5 line filters of MNDWI; SRTM elevation in m / 4000"
)


def read_legacy_weights(path: Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """{our layer name: (kernel HWIO, bias)} from a water_gee HDF5 file."""
    import h5py

    try:
        handle = h5py.File(path, "r")
    except OSError as exc:
        raise ModelError(f"{path}: not a readable HDF5 model ({exc})") from None
    with handle:
        if "model_weights" not in handle:
            raise ModelError(f"{path}: no model_weights group (not a Keras HDF5 model)")
        _check_topology(path, handle.attrs.get("model_config"))
        weights = {}
        for ours, theirs in LEGACY_LAYERS.items():
            group = f"model_weights/{theirs}/{theirs}"
            try:
                kernel = np.asarray(handle[f"{group}/kernel:0"], dtype=np.float32)
                bias = np.asarray(handle[f"{group}/bias:0"], dtype=np.float32)
            except KeyError:
                raise ModelError(
                    f"{path}: layer {theirs} not found (not a water_gee pixel CNN)"
                ) from None
            weights[ours] = (kernel, bias)
    return weights


def _check_topology(path: Path, config: bytes | str | None) -> None:
    """Both concatenations must put the convolution first and the input crop second, as our
    network does; anything else is a different network."""
    if config is None:
        return
    layers = json.loads(config)["config"]["layers"]
    for layer in layers:
        if layer["class_name"] == "Concatenate":
            first = layer["inbound_nodes"][0][0][0]
            if not first.startswith("conv2d"):
                raise ModelError(f"{path}: layer {layer['name']} concatenates in another order")


def import_water_gee(source: Path, folder: Path) -> ModelMetadata:
    """Write a model artifact in `folder` from a water_gee HDF5 file."""
    weights = read_legacy_weights(source)
    channels = weights["conv1"][0].shape[2]
    classes = weights["probabilities"][0].shape[3]
    if channels != len(WATER_GEE_CHANNELS) or classes != 2:
        raise ModelError(
            f"{source}: {channels} input channels and {classes} outputs; water_gee's pixel CNN "
            f"has {len(WATER_GEE_CHANNELS)} and 2"
        )
    model = build_pixelcnn(channels, classes)
    for name, (kernel, bias) in weights.items():
        layer = model.get_layer(name)
        expected = [w.shape for w in layer.get_weights()]
        if [kernel.shape, bias.shape] != [tuple(s) for s in expected]:
            raise ModelError(f"{source}: layer {name} has shapes {kernel.shape}, {bias.shape}")
        layer.set_weights([kernel, bias])
    folder.mkdir(parents=True, exist_ok=True)
    with atomic_path(folder / "model.keras") as tmp:
        model.save(tmp)
    metadata = ModelMetadata(
        kind="pixelcnn",
        file="model.keras",
        channels=WATER_GEE_CHANNELS,
        scaling=WATER_GEE_SCALING,
        features={"recipe": "water_gee", "sensor": "Landsat 8/9 C2 L2", "grid": "30 m"},
        patch=PATCH,
        receptive_field=2 * HALO + 1,
        classes=[ClassInfo(id=1, name="water"), ClassInfo(id=0, name="non-water")],
        samples={
            "imported_from": source.name,
            "sha256": hashlib.sha256(source.read_bytes()).hexdigest(),
        },
        versions=package_versions(),
    )
    write_metadata(folder, metadata)
    return metadata
