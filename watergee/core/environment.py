"""What this installation runs on: library versions, GDAL drivers, GPUs."""

from __future__ import annotations

import os
from importlib import metadata


def _version(distribution: str) -> str:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return "not installed"


def _gpus() -> str:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        import tensorflow as tf
    except ImportError:
        return "unknown (TensorFlow not installed)"
    devices = tf.config.list_physical_devices("GPU")
    if not devices:
        return "none (CPU only)"
    names = []
    for device in devices:
        details = tf.config.experimental.get_device_details(device)
        names.append(details.get("device_name", device.name))
    return f"{len(devices)}: " + ", ".join(names)


def describe_environment(gpus: bool = False) -> list[tuple[str, str]]:
    """Versions from package metadata (nothing heavy imported); TensorFlow is started only
    when `gpus` asks which GPUs it sees."""
    from osgeo import gdal

    import watergee

    tf_version = _version("tensorflow-cpu")
    if tf_version == "not installed":
        tf_version = _version("tensorflow")
    drivers = [
        name for name in ("GTiff", "JP2OpenJPEG", "VRT") if gdal.GetDriverByName(name) is not None
    ]
    return [
        ("watergee", watergee.__version__),
        ("GDAL", gdal.VersionInfo("RELEASE_NAME")),
        ("GDAL drivers", ", ".join(drivers)),
        ("numpy", _version("numpy")),
        ("dask", _version("dask")),
        ("distributed", _version("distributed")),
        ("dask-jobqueue", _version("dask-jobqueue")),
        ("scikit-learn", _version("scikit-learn")),
        ("scikit-image", _version("scikit-image")),
        ("earthengine-api", _version("earthengine-api")),
        ("TensorFlow", tf_version),
        ("GPUs", _gpus() if gpus else "not checked (watergee info --gpus)"),
    ]
