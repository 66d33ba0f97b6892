"""Label-noise correction that removes systematic errors: a per-tile split in the near infrared
and a normal model of the water that survives it.

Systematic label errors (an index threshold, a QA bit or a scene class that also fires on winter
forest, shadow or dark roofs) put whole land-cover types among the labelled water. Water
absorbs the near infrared, land covers labelled water by mistake mostly do not, so the labelled
water's NIR values fall in two modes; Otsu's threshold splits them, and the brighter mode is
dropped when the split is clear (a unimodal, clean label set is left alone). Water the labels
miss is found from the kept water: a pixel labelled land whose Mahalanobis distance to the kept
water's features is as small as that of most kept water joins it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
from scipy.linalg import cho_factor, cho_solve
from skimage.filters import threshold_otsu

#: Channel names of the near infrared, then of the short-wave infrared, in order of preference
#: (Sentinel-2 band ids, Earth Engine feature names).
NIR = ("b08", "nir", "b8a")
SWIR = ("b11", "swir1", "b12", "swir2")
#: Fewest samples the dark mode must keep for a split to be applied (a handful of dark
#: outliers is no water to model).
MINIMUM_WATER = 100
#: Ridge added to the standardised covariance so that a constant channel does not make it
#: singular.
RIDGE = 1e-4


def darkness_channel(names: Sequence[str]) -> int:
    """Index of the channel in which water is darkest relative to land: the NIR band, else a
    SWIR band."""
    folded = [name.casefold() for name in names]
    for wanted in (*NIR, *SWIR):
        if wanted in folded:
            return folded.index(wanted)
    raise ValueError(
        f"no near or short-wave infrared band (B08, nir, B8A, B11, swir1, B12, swir2) among the "
        f"features {list(names)}: nothing tells water from land"
    )


@dataclass(frozen=True)
class Split:
    """Otsu's threshold on the labelled water's darkness channel, and how clearly it splits."""

    threshold: float
    #: Between-mode share of the variance (Otsu's separability, 0 to 1).
    separability: float
    applied: bool

    @property
    def limit(self) -> float:
        """Labelled water brighter than this is dropped (infinite when the split is not clear)."""
        return self.threshold if self.applied else np.inf

    def report(self) -> dict[str, float | bool | None]:
        """The split for a JSON report: no infinity, rounded as a reader wants it."""
        threshold = round(self.threshold, 6) if np.isfinite(self.threshold) else None
        return {
            "threshold": threshold,
            "separability": round(self.separability, 4),
            "applied": self.applied,
        }


def split_darkness(values: np.ndarray, separability: float, minimum: int) -> Split:
    """Split 1-D `values` by Otsu's threshold; apply it when its separability reaches
    `separability` and at least `minimum` values lie at or below it (a handful of dark
    outliers is no water to model)."""
    if len(values) < 2 or values.min() == values.max():
        return Split(float(values.max(initial=0.0)), 0.0, False)
    threshold = float(threshold_otsu(values))
    low = values <= threshold
    share = low.mean()
    gap = values[low].mean() - values[~low].mean()
    eta = float(share * (1 - share) * gap**2 / values.var())
    return Split(threshold, eta, eta >= separability and int(low.sum()) >= minimum)


def dark_members(values: np.ndarray, members: np.ndarray, separability: float) -> np.ndarray:
    """`members` (a mask over `values`, e.g. a map's NIR) less those in the bright mode of
    their values: water polygons as a reference, without the shore they take in."""
    split = split_darkness(values[members], separability, MINIMUM_WATER)
    return members & (values <= split.limit)


@dataclass(frozen=True)
class WaterModel:
    """A normal model of water features: mean and Cholesky factor of the covariance, in
    standardised units, and the squared Mahalanobis distance within which a pixel is water."""

    centre: np.ndarray
    scale: np.ndarray
    factor: tuple[np.ndarray, bool]
    reach: float

    @classmethod
    def fit(cls, samples: np.ndarray, quantile: float) -> WaterModel:
        """From (n, channels) water samples; `reach` is the distance of all but the `quantile`
        share of them that lie farthest."""
        centre = samples.mean(axis=0)
        scale = samples.std(axis=0)
        scale = np.where(scale > 0, scale, 1.0)
        table = (samples - centre) / scale
        covariance = np.cov(table.T).reshape(len(centre), len(centre))
        factor = cho_factor(covariance + RIDGE * np.eye(len(centre)), lower=True)
        model = cls(centre, scale, factor, np.inf)
        return replace(model, reach=float(np.quantile(model.distance(samples), 1 - quantile)))

    def distance(self, table: np.ndarray) -> np.ndarray:
        """Squared Mahalanobis distance of (n, channels) values to the water."""
        centred = (table - self.centre) / self.scale
        return np.einsum("ij,ij->i", centred, cho_solve(self.factor, centred.T).T)


def correct(
    features: np.ndarray,
    labelled: np.ndarray,
    channel: int,
    split: Split,
    model: WaterModel | None,
) -> np.ndarray:
    """Water among (channels, n) pixels labelled `labelled`: the labelled water not brighter
    than the split, and (with a model) every pixel within its reach."""
    water = labelled & (features[channel] <= split.limit)
    if model is not None:
        water |= model.distance(features.T) <= model.reach
    return water
