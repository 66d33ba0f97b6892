"""TensorFlow as watergee uses it: quiet, and sharing GPUs between processes."""

from __future__ import annotations

import contextlib
from types import ModuleType

from watergee.core.environment import import_tensorflow

_configured = False


def tensorflow() -> ModuleType:
    """TensorFlow, with GPU memory taken as needed rather than all at once: several Dask worker
    processes on one GPU node would otherwise each claim every GPU's whole memory."""
    global _configured
    tf = import_tensorflow()

    if not _configured:
        for gpu in tf.config.list_physical_devices("GPU"):
            # RuntimeError: this process already uses the GPU; it keeps its setting.
            with contextlib.suppress(RuntimeError):
                tf.config.experimental.set_memory_growth(gpu, True)
        _configured = True
    return tf
