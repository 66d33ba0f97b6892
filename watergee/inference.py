"""Dense inference of valid-convolution networks over a tile, window by window.

Each window is read with a halo equal to the network's receptive-field radius (plus what the
feature channels need), the network runs once on it, and the window's interior comes out: at
every pixel the same answer as the patch centred there. A pixel whose receptive field touches no
data or leaves the tile gets no prediction.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from watergee.features import FeatureReader
from watergee.models.predictor import compiled_forward
from watergee.raster import Window, iter_windows
from watergee.sampling import patch_fits


def predict_windows(
    model,
    reader: FeatureReader,
    field: int,
    mean: np.ndarray,
    std: np.ndarray,
    window_size: int,
) -> Iterator[tuple[Window, np.ndarray, np.ndarray, np.ndarray]]:
    """(window, probabilities (rows, cols, classes), valid (rows, cols), features (channels,
    rows, cols)) for each window."""
    halo = field // 2
    forward = compiled_forward(model)
    height, width = reader.ds.RasterYSize, reader.ds.RasterXSize
    for window in iter_windows(width, height, window_size):
        features = reader.read(window, halo=halo)
        valid = patch_fits(~np.isnan(features).any(axis=0), field)[
            halo : -halo or None, halo : -halo or None
        ]
        x = (np.nan_to_num(np.moveaxis(features, 0, -1)) - mean) / std
        probabilities = forward(x[None])[0]
        inner = features[:, halo : halo + window.height, halo : halo + window.width]
        yield window, probabilities, valid, inner
