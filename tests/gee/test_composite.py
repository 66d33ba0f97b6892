"""Composite, features and noisy labels as Earth Engine expressions: they serialise with the
documented masks and scales, and a scene's masking evaluates as documented."""

import json

import numpy as np

from watergee.core.config import GeeSettings
from watergee.gee.composite import (
    LINE_KERNELS,
    download_image,
    landsat_scene,
    season_dates,
    sentinel2_scene,
)
from watergee.gee.interpreter import evaluate, image_from_array
from watergee.spectral import line_filter


def _calls(expression: dict) -> list[dict]:
    found = []

    def walk(node):
        if isinstance(node, dict):
            if "functionInvocationValue" in node:
                found.append(node["functionInvocationValue"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(expression)
    return found


def _constants(calls, function, argument):
    values = []
    for call in calls:
        if call.get("functionName") == function and argument in call.get("arguments", {}):
            values.append(call["arguments"][argument].get("constantValue"))
    return values


def _encode(ee, image):
    """The serialised expression with every shared value written out where it is used."""
    encoded = ee.serializer.encode(image, for_cloud_api=True)
    values = encoded["values"]

    def inline(node):
        if isinstance(node, dict):
            if "valueReference" in node:
                return inline(values[node["valueReference"]])
            if "functionDefinitionValue" in node:  # a mapped function: its body by reference
                definition = dict(node["functionDefinitionValue"])
                definition["body"] = inline(values[definition["body"]])
                return {"functionDefinitionValue": definition}
            return {k: inline(v) for k, v in node.items()}
        if isinstance(node, list):
            return [inline(v) for v in node]
        return node

    return inline(values[encoded["result"]])


def test_landsat_download_expression_has_the_documented_masks_and_scales(ee_offline):
    ee = ee_offline
    region = ee.Geometry.Rectangle([10.0, 50.0, 10.3, 50.2])
    expression = _encode(ee, download_image(GeeSettings(years=[2021, 2022]), region))
    calls = _calls(expression)
    text = json.dumps(expression)
    for collection in ("LANDSAT/LC08/C02/T1_L2", "LANDSAT/LC09/C02/T1_L2", "USGS/SRTMGL1_003"):
        assert collection in text
    assert "QA_PIXEL" in text and "SR_B6" in text
    assert 31 in _constants(calls, "Image.constant", "value")  # QA_PIXEL bits 0-4
    assert 7 in _constants(calls, "Image.constant", "value")  # the water bit
    assert 2.75e-05 in _constants(calls, "Image.constant", "value")
    assert -0.2 in _constants(calls, "Image.constant", "value")
    assert 4000.0 in _constants(calls, "Image.constant", "value")
    for date in ("2021-06-01", "2021-09-01", "2022-06-01", "2022-09-01"):
        assert f'"{date}"' in text  # June to August of each year
    assert "Filter.calendarRange" not in text
    assert any(c.get("functionName") == "Reducer.median" for c in calls)
    kernels = [[row["constantValue"] for row in c["arguments"]["weights"]["arrayValue"]["values"]]
               for c in calls if c.get("functionName") == "Kernel.fixed"]  # fmt: skip
    assert set(map(str, kernels)) == set(map(str, LINE_KERNELS))


def test_sentinel2_expression_masks_scl_cloud_shadow_cirrus(ee_offline):
    ee = ee_offline
    settings = GeeSettings(sensor="sentinel2", reducer="mean", months=(12, 2))
    expression = _encode(ee, download_image(settings, ee.Geometry.Point([10, 50])))
    calls = _calls(expression)
    assert "COPERNICUS/S2_SR_HARMONIZED" in json.dumps(expression)
    remaps = [c["arguments"] for c in calls if c.get("functionName") == "Image.remap"]
    assert any(r["from"]["constantValue"] == [0, 3, 8, 9, 10] for r in remaps)
    assert 1e-4 in _constants(calls, "Image.constant", "value")
    assert any(c.get("functionName") == "Reducer.mean" for c in calls)
    text = json.dumps(expression)
    assert '"2021-12-01"' in text and '"2022-03-01"' in text  # one winter, across the new year


def test_seasons_are_date_ranges_that_may_wrap_the_new_year():
    assert season_dates(2021, 6, 8) == ("2021-06-01", "2021-09-01")
    assert season_dates(2021, 12, 2) == ("2021-12-01", "2022-03-01")
    assert season_dates(2021, 1, 12) == ("2021-01-01", "2022-01-01")
    assert season_dates(2021, 11, 12) == ("2021-11-01", "2022-01-01")


def test_a_landsat_scene_is_masked_scaled_and_flagged_as_documented(ee_offline):
    ee = ee_offline
    qa = np.array(
        [
            [0b0000000, 0b1000000, 0b10000000],  # clear; clear bit; water
            [0b0001000, 0b0010000, 0b10000010],  # cloud; shadow; water + dilated cloud
            [0b0000001, 0b0000100, 0b11000000],
        ]
    )  # fill; cirrus; water + clear
    dn = np.full((5, 3, 3), 10000.0)
    names = ["SR_B2", "SR_B3", "SR_B4", "SR_B5", "SR_B6", "QA_PIXEL"]
    scene = image_from_array(np.concatenate([dn, qa[None]]), names)
    encoded = ee.serializer.encode(landsat_scene(ee.Image("scene")), for_cloud_api=True)
    out = {b.name: b for b in evaluate(encoded, {"scene": scene})}
    clear = np.array([[1, 1, 1], [0, 0, 0], [0, 0, 1]], bool)
    np.testing.assert_array_equal(out["blue"].mask, clear)
    np.testing.assert_allclose(out["swir1"].data, 10000 * 2.75e-05 - 0.2)
    np.testing.assert_array_equal(out["water"].data[clear], [0, 0, 1, 1])


def test_a_sentinel2_scene_keeps_clear_classes_and_flags_scl_6(ee_offline):
    ee = ee_offline
    scl = np.arange(12, dtype=float).reshape(3, 4)
    names = ["B2", "B3", "B4", "B8", "B11", "SCL"]
    scene = image_from_array(np.concatenate([np.full((5, 3, 4), 2500.0), scl[None]]), names)
    encoded = ee.serializer.encode(sentinel2_scene(ee.Image("s")), for_cloud_api=True)
    out = {b.name: b for b in evaluate(encoded, {"s": scene})}
    expected_clear = ~np.isin(scl, [0, 3, 8, 9, 10])
    np.testing.assert_array_equal(out["green"].mask, expected_clear)
    np.testing.assert_allclose(out["green"].data, 0.25)
    np.testing.assert_array_equal(out["water"].data == 1, scl == 6)


def test_line_kernels_are_the_indices_stage_line_filter():
    values = np.random.default_rng(4).normal(size=(12, 13)).astype(np.float32)
    windows = np.lib.stride_tricks.sliding_window_view(values, (5, 5))
    responses = [np.einsum("yxij,ij->yx", windows, np.asarray(k, float)) for k in LINE_KERNELS]
    np.testing.assert_allclose(np.max(responses, axis=0), line_filter(values), atol=1e-5)
    for k in LINE_KERNELS:  # a half turn leaves each kernel as it is: no flip question
        assert np.array_equal(np.asarray(k), np.rot90(np.asarray(k), 2))
