"""Photometric augmentation: known gains and haze offsets, indices kept consistent."""

import numpy as np
import pytest

from watergee.models.augment import WAVELENGTH_NM, Photometric
from watergee.spectral import normalized_difference

NAMES = ["B02", "B03", "B08", "B11", "B12", "NDWI", "MNDWI", "LINE", "DEM/4000"]


def _patches(n=500, seed=1, darkest=0.02):
    rng = np.random.default_rng(seed)
    x = rng.uniform(darkest, 0.4, (n, 3, 3, len(NAMES))).astype(np.float32)
    green, nir, swir = x[..., 1], x[..., 2], x[..., 3]
    x[..., 5] = normalized_difference(green, nir)
    x[..., 6] = normalized_difference(green, swir)
    x[..., 7] = rng.normal(0, 0.1, x.shape[:3])
    x[..., 8] = rng.uniform(0, 0.5, x.shape[:3])
    return x


def test_a_gain_scales_every_band_of_a_patch_alike_and_keeps_ratios():
    x = _patches()
    out = Photometric.for_channels(NAMES, gain=2.0, haze=0.0)(x, np.random.default_rng(0))
    factor = out[..., :5] / x[..., :5]
    per_patch = factor[:, :1, :1, :1]
    np.testing.assert_allclose(factor, np.broadcast_to(per_patch, factor.shape), rtol=1e-5)
    assert factor.min() >= 0.5 - 1e-6 and factor.max() <= 2.0 + 1e-6
    assert factor.min() < 0.6 and factor.max() > 1.8  # the whole range is drawn
    # Normalised differences do not change with a common gain; LINE and elevation are kept.
    np.testing.assert_allclose(out[..., 5:7], x[..., 5:7], atol=1e-5)
    np.testing.assert_array_equal(out[..., 7:], x[..., 7:])


def test_haze_falls_with_the_fourth_power_of_wavelength():
    x = _patches(darkest=0.15)  # no reflectance reaches the floor
    out = Photometric.for_channels(NAMES, gain=1.0, haze=0.1)(x, np.random.default_rng(0))
    shift = (out - x)[..., :5]
    blue = shift[..., 0]
    assert np.abs(blue).max() <= 0.1 + 1e-6 and np.abs(blue).max() > 0.09
    for k, band in enumerate(["B03", "B08", "B11", "B12"], start=1):
        expected = blue * (WAVELENGTH_NM["B02"] / WAVELENGTH_NM[band]) ** 4
        np.testing.assert_allclose(shift[..., k], expected, atol=2e-6, err_msg=band)
    # Indices follow the changed bands; LINE and elevation do not move.
    np.testing.assert_allclose(
        out[..., 5], normalized_difference(out[..., 1], out[..., 2]), atol=1e-6
    )
    np.testing.assert_allclose(
        out[..., 6], normalized_difference(out[..., 1], out[..., 3]), atol=1e-6
    )
    np.testing.assert_array_equal(out[..., 7:], x[..., 7:])


def test_reflectance_never_drops_to_zero():
    x = np.full((200, 1, 1, 2), 0.01, np.float32)
    out = Photometric.for_channels(["B02", "B03"], 1.0, 0.2)(x, np.random.default_rng(0))
    assert out.min() == pytest.approx(1e-4)


def test_same_seed_same_augmentation_and_none_when_off():
    x = _patches()
    augment = Photometric.for_channels(NAMES, 1.5, 0.05)
    first = augment(x, np.random.default_rng(7))
    np.testing.assert_array_equal(first, augment(x, np.random.default_rng(7)))
    assert not np.array_equal(first, augment(x, np.random.default_rng(8)))
    assert Photometric.for_channels(NAMES, 1.0, 0.0)(x, np.random.default_rng(0)) is x
    # Channels with no known wavelength (Earth Engine's water_gee features are named) stay.
    unknown = Photometric.for_channels(["a", "b"], 2.0, 0.1)
    assert not unknown.active


def test_earth_engine_feature_names_are_bands():
    augment = Photometric.for_channels(["blue", "green", "nir", "swir1", "MNDWI"], 1.5, 0.0)
    assert np.isfinite(augment.profile[:4]).all() and np.isnan(augment.profile[4])


def test_jitter_scales_each_band_of_a_patch_by_its_own_factor():
    x = _patches(n=4000)
    augment = Photometric.for_channels(NAMES, gain=1.0, haze=0.0, jitter=0.2)
    assert augment.active
    out = augment(x, np.random.default_rng(0))
    factor = out[..., :5] / x[..., :5]
    # One factor per patch and band, the same over the patch's pixels ...
    np.testing.assert_allclose(factor, np.broadcast_to(factor[:, :1, :1], factor.shape), rtol=1e-5)
    logs = np.log(factor[:, 0, 0])
    # ... drawn apart for each band, log-normal with the jitter as standard deviation.
    assert np.abs(np.corrcoef(logs.T) - np.eye(5)).max() < 0.06
    np.testing.assert_allclose(logs.std(axis=0), 0.2, rtol=0.05)
    np.testing.assert_allclose(logs.mean(axis=0), 0.0, atol=0.01)
    # Indices follow the changed bands (their ratio moves now); LINE and elevation stay.
    np.testing.assert_allclose(
        out[..., 6], normalized_difference(out[..., 1], out[..., 3]), atol=1e-6
    )
    assert np.abs(out[..., 6] - x[..., 6]).max() > 0.05
    np.testing.assert_array_equal(out[..., 7:], x[..., 7:])


def test_jitter_comes_with_the_gain_and_haze_of_the_same_patch():
    x = _patches(darkest=0.15)
    both = Photometric.for_channels(NAMES, gain=2.0, haze=0.05, jitter=0.1)
    out = both(x, np.random.default_rng(3))
    rng = np.random.default_rng(3)
    factor = np.exp(rng.normal(0, 0.1, (len(x), 1, 1, len(NAMES))))
    gain = np.exp(rng.uniform(-np.log(2.0), np.log(2.0), (len(x), 1, 1, 1)))
    haze = rng.uniform(-0.05, 0.05, (len(x), 1, 1, 1))
    expected = x[..., :5] * factor[..., :5] * gain + haze * both.profile[:5]
    np.testing.assert_allclose(out[..., :5], expected, rtol=1e-5, atol=1e-6)
