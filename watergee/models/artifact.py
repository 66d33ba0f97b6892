"""A model artifact: one folder with the fitted model and `model.json`, which says everything
classification needs (channels and their order, scaling, features, patch and centre, classes,
normalisation) so that no other file or setting is ever required to use it."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from watergee import __version__
from watergee.core.atomic import atomic_path
from watergee.core.errors import ModelError
from watergee.io.stac import write_model_record
from watergee.models.runtime import tensorflow
from watergee.sampleset import ClassInfo

METADATA = "model.json"
ModelKind = Literal["pixelcnn", "resnet", "dense-resnet", "svm", "rf"]


class ModelMetadata(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: ModelKind
    file: str = Field(description="The fitted model inside the folder.")
    channels: list[str] = Field(description="Input channels, in order.")
    scaling: str = Field(description="What the input values are (units, scaling).")
    features: dict[str, Any] = Field(
        default_factory=dict, description="How the channels are made from imagery."
    )
    patch: int = Field(description="Patch side the model was trained on.")
    centre: str = Field("sample pixel at row and column patch // 2 of its patch")
    receptive_field: int = Field(description="Context in pixels a dense prediction needs.")
    classes: list[ClassInfo] = Field(description="Output channel i predicts classes[i].")
    normalization: dict[str, list[float]] | None = Field(
        None, description="Per-channel mean and std subtracted/divided before the model."
    )
    metrics: dict[str, Any] = Field(default_factory=dict)
    samples: dict[str, Any] = Field(
        default_factory=dict, description="The sample set: path and manifest hash."
    )
    versions: dict[str, str] = Field(default_factory=dict)
    watergee: str = __version__


def write_metadata(folder: Path, metadata: ModelMetadata) -> Path:
    path = folder / METADATA
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(metadata.model_dump(mode="json"), indent=2) + "\n")
    write_model_record(folder, metadata.model_dump(mode="json"))  # STAC MLM, for catalogues
    return path


def read_metadata(folder: Path) -> ModelMetadata:
    path = folder / METADATA
    if not folder.is_dir():
        raise ModelError(f"{folder}: model folder not found")
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise ModelError(f"{path}: model metadata missing") from None
    except (OSError, ValueError) as exc:
        raise ModelError(f"{path}: unreadable model metadata ({exc})") from None
    try:
        metadata = ModelMetadata.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(f"'{'.'.join(map(str, e['loc']))}': {e['msg']}" for e in exc.errors())
        raise ModelError(f"{path}: {problems}") from None
    if not (folder / metadata.file).exists():
        raise ModelError(f"{folder / metadata.file}: model file named in {METADATA} is missing")
    return metadata


def check_model_folder(folder: Path) -> ModelMetadata:
    """What can be checked of a model folder without loading its model: metadata, and for a
    Keras file the archive and its input channels against model.json. Cheap enough for the
    driver, before any tile is given the folder."""
    metadata = read_metadata(folder)
    path = folder / metadata.file
    if path.suffix != ".keras":
        return metadata
    try:
        with zipfile.ZipFile(path) as archive:
            config = json.loads(archive.read("config.json"))
    except (OSError, KeyError, ValueError, zipfile.BadZipFile) as exc:
        raise ModelError(f"{path}: not a readable Keras model ({exc})") from None
    shapes = [
        layer.get("config", {}).get("batch_shape")
        for layer in config.get("config", {}).get("layers", [])
        if layer.get("class_name") == "InputLayer"
    ]
    if shapes and shapes[0] and shapes[0][-1] is not None:
        require_weights_fit(path, shapes[0][-1], metadata)
    return metadata


def require_weights_fit(path: Path, channels: int, metadata: ModelMetadata) -> None:
    """The fitted model in `path` takes `channels` inputs: they must be model.json's."""
    if channels != len(metadata.channels):
        raise ModelError(
            f"{path}: weights expect {channels} channels, {METADATA} lists {len(metadata.channels)}"
        )


def check_channels(metadata: ModelMetadata, channels: list[str], source: str, model: str) -> None:
    """Refuse an input whose channels are not the model's, naming both."""
    if channels != metadata.channels:
        raise ModelError(
            f"{source}: channels {', '.join(channels)} do not match model {model} "
            f"({', '.join(metadata.channels)})"
        )


def package_versions() -> dict[str, str]:
    from importlib import metadata

    versions = {}
    for name in ("numpy", "tensorflow-cpu", "tensorflow", "keras", "scikit-learn", "GDAL"):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


def load_keras_model(folder: Path):
    """The Keras model of an artifact (TensorFlow is imported only here)."""
    metadata = read_metadata(folder)
    tensorflow()
    import keras

    path = folder / metadata.file
    if not zipfile.is_zipfile(path) and path.suffix == ".keras":
        raise ModelError(f"{path}: not a readable Keras model (not a .keras archive)")
    try:
        return metadata, keras.models.load_model(path, compile=False)
    except Exception as exc:  # Keras raises many kinds on foreign or damaged files
        reason = " ".join(str(exc).split())[:160] or type(exc).__name__
        raise ModelError(f"{path}: not a readable Keras model ({reason})") from None
