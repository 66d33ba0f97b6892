"""The windowed prediction loop: no data never reaches the model and never gets a class."""

import numpy as np

from tests.conftest import ORIGIN
from watergee.features import FeatureReader
from watergee.io.raster import open_raster, utm_grid, write_array
from watergee.models.inference import predict_windows


def test_no_data_and_infinities_are_kept_from_the_model(tmp_path):
    rng = np.random.default_rng(0)
    values = rng.uniform(0, 1, (2, 40, 50)).astype(np.float32)
    values[0, 10, 12] = np.nan
    values[1, 30, 33] = np.inf
    path = tmp_path / "features.tif"
    write_array(path, values, utm_grid(32633, ORIGIN, 10, 50, 40))
    reader = FeatureReader.open(open_raster(path), [], [])
    seen = []

    def predict(features, rows, cols):
        seen.append(np.isfinite(features).all())
        centre = features[:, 1 : 1 + rows, 1 : 1 + cols].sum(0)
        return np.stack([centre, -centre], -1)

    windows = list(predict_windows(predict, reader, 3, 16, 2))
    assert len(windows) == 12 and all(seen)
    valid = np.zeros((40, 50), bool)
    probabilities = np.zeros((40, 50, 2), np.float32)
    features = np.zeros((2, 40, 50), np.float32)
    for window, p, ok, inner in windows:
        valid[window.slices], probabilities[window.slices] = ok, p
        features[:, window.slices[0], window.slices[1]] = inner
    expected = np.zeros((40, 50), bool)
    expected[1:-1, 1:-1] = True
    expected[9:12, 11:14] = expected[29:32, 32:35] = False  # 3 x 3 around each bad value
    np.testing.assert_array_equal(valid, expected)
    np.testing.assert_allclose(probabilities[valid][:, 0], values.sum(0)[valid], rtol=1e-6)
    assert np.isnan(features[0, 10, 12]) and np.isnan(features[1, 30, 33])  # inf is no data too
