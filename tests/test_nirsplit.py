"""The NIR split and the water model, on values with known answers."""

import numpy as np
import pytest

from watergee.nirsplit import (
    WaterModel,
    correct,
    dark_members,
    darkness_channel,
    split_darkness,
)


def test_the_darkness_channel_is_the_nir_band_else_swir():
    assert darkness_channel(["B02", "B11", "B08", "MNDWI"]) == 2
    assert darkness_channel(["blue", "NIR", "swir1"]) == 1  # case does not matter
    assert darkness_channel(["B03", "B12"]) == 1
    with pytest.raises(ValueError, match=r"no near or short-wave infrared band .* \['B02'\]"):
        darkness_channel(["B02"])


def test_two_clear_modes_are_split_and_one_mode_is_not():
    rng = np.random.default_rng(0)
    water = rng.normal(0.03, 0.005, 600)
    forest = rng.normal(0.15, 0.01, 400)
    split = split_darkness(np.r_[water, forest], 0.7, 100)
    assert split.applied and water.max() < split.threshold < forest.min()
    assert split.separability > 0.95
    # A normal sample splits at its middle with separability 2 / pi, about 0.64: kept whole.
    one = split_darkness(rng.normal(0.05, 0.01, 20000), 0.7, 100)
    assert not one.applied and one.limit == np.inf
    assert one.separability == pytest.approx(2 / np.pi, abs=0.01)
    assert not split_darkness(np.full(5, 0.1), 0.7, 1).applied
    # A flat spread is split (uniform: separability 3/4) ...
    assert split_darkness(rng.uniform(0.02, 0.08, 20000), 0.7, 100).separability > 0.74
    # ... but a few dark outliers are no water to keep on their own.
    outliers = np.r_[np.full(3, 0.01), rng.normal(0.2, 0.005, 500)]
    assert split_darkness(outliers, 0.7, 1).applied
    assert not split_darkness(outliers, 0.7, 100).applied


def test_the_water_model_reaches_all_but_the_quantile():
    rng = np.random.default_rng(1)
    samples = rng.normal([0.05, 0.02], [0.01, 0.004], size=(10000, 2))
    model = WaterModel.fit(samples, 0.05)
    # Squared Mahalanobis distances of 2-D normal samples follow chi2(2): 95 % within 5.99.
    assert model.reach == pytest.approx(5.99, rel=0.05)
    assert model.distance(np.array([[0.05, 0.02]]))[0] == pytest.approx(0, abs=1e-3)
    assert model.distance(np.array([[0.08, 0.02]]))[0] == pytest.approx(9, rel=0.05)  # 3 sd


def test_correct_keeps_dark_labelled_water_and_adds_close_pixels():
    rng = np.random.default_rng(2)
    model = WaterModel.fit(rng.normal([0.05, 0.02], [0.01, 0.004], size=(5000, 2)), 0.05)
    split = split_darkness(np.r_[rng.normal(0.05, 0.01, 500), rng.normal(0.3, 0.02, 500)], 0.7, 100)
    # channels x pixels: water labelled, bright labelled, water unlabelled, land unlabelled
    features = np.array([[0.05, 0.30, 0.051, 0.30], [0.02, 0.10, 0.021, 0.10]])
    labelled = np.array([True, True, False, False])
    assert correct(features, labelled, 0, split, model).tolist() == [True, False, True, False]
    assert correct(features, labelled, 0, split, None).tolist() == [True, False, False, False]


def test_dark_members_drop_the_bright_mode_of_a_reference():
    """Water polygons over dark water and a bright beach: the beach leaves, land never joins."""
    rng = np.random.default_rng(4)
    values = np.concatenate([rng.normal(0.02, 0.005, 300), rng.normal(0.2, 0.02, 60),
                             rng.normal(0.01, 0.002, 50)])  # fmt: skip
    members = np.r_[np.ones(360, bool), np.zeros(50, bool)]
    dark = dark_members(values, members, 0.7)
    np.testing.assert_array_equal(dark, np.r_[np.ones(300, bool), np.zeros(110, bool)])
    # One mode only: the reference is kept whole.
    np.testing.assert_array_equal(dark_members(values[:300], members[:300], 0.7), members[:300])
