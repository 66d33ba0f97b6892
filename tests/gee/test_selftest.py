"""`gee selftest` against a server that follows Earth Engine's documented semantics (the local
evaluator), and against one whose neighbourhoods are turned a half turn: the first agrees,
the second is caught."""

import numpy as np
import pytest

from tests.conftest import randomise_weights
from tests.gee.test_export import _artifact
from watergee.core.config import GeeSettings
from watergee.gee.composite import FEATURE_BANDS, FEATURE_CHANNELS
from watergee.gee.interpreter import evaluate, image_from_array
from watergee.gee.model_export import FEATURES_ID, model_image
from watergee.gee.selftest import MASK, selftest
from watergee.models.pixelcnn import build_pixelcnn


def _server(folder, half_turn=False):
    import ee

    probability, metadata = model_image(folder, ee.Image(FEATURES_ID))
    encoded = ee.serializer.encode(probability, for_cloud_api=True)
    names = [f"probability_{c.id}" for c in metadata.classes]

    def fetch(params):
        assert params["bandIds"] == [*FEATURE_BANDS, *names, MASK]  # what selftest compares
        grid = params["grid"]
        w, h = grid["dimensions"]["width"], grid["dimensions"]["height"]
        a = grid["affineTransform"]
        lon, lat = np.meshgrid(a["translateX"] + (np.arange(w) + 0.5) * a["scaleX"],
                               a["translateY"] + (np.arange(h) + 0.5) * a["scaleY"])  # fmt: skip
        # features that change from pixel to pixel, so that a turned neighbourhood shows
        values = np.stack([np.sin(lon * 1e4 * (k + 1) + lat * 7e3 * (k + 2))
                           for k in range(len(FEATURE_BANDS))])  # fmt: skip
        seen = values[:, ::-1, ::-1] if half_turn else values
        out = evaluate(encoded, {FEATURES_ID: image_from_array(seen, list(FEATURE_CHANNELS))})
        answer = np.zeros((h, w), dtype=[(b, np.float32) for b in params["bandIds"]])
        for band, value in zip(FEATURE_BANDS, values, strict=True):
            answer[band] = value
        for name, band in zip(names, out, strict=True):
            data = np.where(band.mask, band.data, 0)
            answer[name] = data[::-1, ::-1] if half_turn else data
        mask = out[0].mask[::-1, ::-1] if half_turn else out[0].mask
        answer[MASK] = mask
        return answer

    return fetch


@pytest.mark.parametrize(("half_turn", "ok"), [(False, True), (True, False)])
def test_selftest_tells_a_faithful_server_from_a_turned_one(ee_offline, tmp_path, half_turn, ok):
    model = build_pixelcnn(8)
    randomise_weights(model, 8)
    folder = _artifact(tmp_path / "cnn", model)
    report = selftest(folder, GeeSettings(), 10.05, 50.05, fetch=_server(folder, half_turn))
    assert report.pixels == 58 * 58
    assert report.ok is ok
    assert (report.max_difference < 1e-4) is ok
