"""Inference over a tile, window by window, with the next window read while the model runs.

Each window is read with a halo equal to the model's receptive-field radius (plus what the
feature channels need) and the model returns the window's interior: for valid-convolution
networks, at every pixel the same answer as the patch centred there. A pixel whose receptive
field touches no data (NaN, inf) or leaves the tile gets no prediction.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from watergee.features import FeatureReader
from watergee.io.raster import Window, iter_windows, task_thread_initializer
from watergee.sampling import patch_fits

#: (features (channels, rows + 2 halo, cols + 2 halo) without no data, rows, cols) ->
#: probabilities (rows, cols, classes).
Predict = Callable[[np.ndarray, int, int], np.ndarray]


def predict_windows(
    predict: Predict, reader: FeatureReader, field: int, side: int, classes: int
) -> Iterator[tuple[Window, np.ndarray, np.ndarray, np.ndarray]]:
    """(window, probabilities (rows, cols, classes), valid (rows, cols), features (channels,
    rows, cols), no data still NaN) over the tile. A window without one valid pixel is not
    predicted (zeros)."""
    ds = reader.ds
    windows = list(iter_windows(ds.RasterXSize, ds.RasterYSize, side))
    halo = field // 2

    def load(window: Window) -> np.ndarray:
        return reader.read(window, halo=halo)

    with ThreadPoolExecutor(max_workers=1, initializer=task_thread_initializer()) as pool:
        pending = pool.submit(load, windows[0]) if windows else None
        for i, window in enumerate(windows):
            features = pending.result()
            if i + 1 < len(windows):
                pending = pool.submit(load, windows[i + 1])
            missing = ~np.isfinite(features)
            fits = patch_fits(~missing.any(axis=0), field)
            valid = fits[halo : halo + window.height, halo : halo + window.width]
            inner = features[:, halo : halo + window.height, halo : halo + window.width]
            if not valid.any():
                empty = np.zeros((window.height, window.width, classes), np.float32)
                yield window, empty, valid, inner
                continue
            known = np.where(missing, np.float32(0), features) if missing.any() else features
            yield window, predict(known, window.height, window.width), valid, inner
