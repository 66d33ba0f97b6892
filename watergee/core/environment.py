"""What this installation runs on: library versions, GDAL drivers, GPUs."""

from __future__ import annotations

import contextlib
import os
import re
import sys
import tempfile
import threading
from collections.abc import Iterator
from importlib import metadata
from types import ModuleType

#: TensorFlow's C++ start-up notices, written straight to file descriptor 2 before its own
#: log level (TF_CPP_MIN_LOG_LEVEL) is in force. Everything else (CUDA errors) is kept.
_STARTUP_NOTICES = re.compile(
    r"All log messages before absl::InitializeLog|oneDNN custom operations are on"
    r"|cpu_feature_guard|This TensorFlow binary is optimized|To enable the following instructions"
)


def usable_cpus() -> int:
    """The CPUs this process may run on (its affinity: a Slurm job's share of a node), not
    the node's count."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except AttributeError:  # no affinity on this platform
        return os.cpu_count() or 1


def _version(distribution: str) -> str:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return "not installed"


@contextlib.contextmanager
def _without_startup_notices() -> Iterator[None]:
    """Capture file descriptor 2 for the block; pass on every line but the start-up notices."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as capture:
        os.dup2(capture.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            for line in capture.read().splitlines(keepends=True):
                if not _STARTUP_NOTICES.search(line.decode(errors="replace")):
                    os.write(2, line)


_TF_LOCK = threading.Lock()
_tensorflow: ModuleType | None = None


def import_tensorflow() -> ModuleType:
    """TensorFlow, imported and warmed up (the first operation prints notices too) without
    its start-up notices on the terminal or in the logs; once per process, whichever thread
    asks first (file descriptor 2 is redirected meanwhile, so never twice at once)."""
    global _tensorflow
    with _TF_LOCK:
        if _tensorflow is None:
            os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
            with _without_startup_notices():
                import tensorflow as tf

                tf.constant(0.0) + 1.0
            _tensorflow = tf
    return _tensorflow


def _gpus() -> str:
    try:
        tf = import_tensorflow()
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
