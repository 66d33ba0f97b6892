"""Photometric augmentation of training patches.

Scenes differ in illumination, season, atmosphere and processing level (top-of-atmosphere or
surface reflectance): the same surface is brighter or darker by a common factor, and the
atmosphere adds path radiance that falls steeply with wavelength (Rayleigh scattering,
about lambda^-4: large in blue, negligible in the short-wave infrared). A model that sees one
scene's radiometry learns its absolute levels and fails on the next scene; drawing a gain and
a haze level for every training patch teaches it what holds across scenes. Neither changes the
shape of a spectrum, which differs too: atmospheric transmission (aerosols, water vapour,
ozone) is not a power of wavelength, surface-reflectance processors correct each band apart,
and sensors differ in calibration and spectral response; a factor of its own for each band
stands for those.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from watergee.spectral import INDEX_BANDS, normalized_difference

#: Central wavelength (nm) of the reflectance channels by name: Sentinel-2 MSI band ids and
#: the Earth Engine feature names (Landsat 8/9 OLI).
WAVELENGTH_NM: dict[str, float] = {
    "B01": 443, "B02": 492, "B03": 560, "B04": 665, "B05": 704, "B06": 740, "B07": 783,
    "B08": 833, "B8A": 865, "B09": 945, "B10": 1374, "B11": 1614, "B12": 2202,
    "BLUE": 482, "GREEN": 562, "RED": 655, "NIR": 865, "SWIR1": 1609, "SWIR2": 2201,
}  # fmt: skip

#: Haze is drawn as an offset in blue (492 nm); other bands get (492 / lambda)^4 of it.
_HAZE_REFERENCE_NM = 492.0

#: Smallest reflectance an offset may leave (1 DN), so no normalised difference divides by ~0.
_FLOOR = np.float32(1e-4)


@dataclass(frozen=True)
class Photometric:
    """Per patch, on every channel named by a known band: reflectance times a factor of the
    band's own, exp(N(0, jitter^2)), and times one gain drawn log-uniformly in [1/gain, gain],
    plus a haze offset drawn uniformly in [-haze, haze] at 492 nm and scaled by
    (492 / wavelength)^4. Normalised differences whose two bands are channels are recomputed
    from the changed bands; other channels (LINE, elevation) are kept, which is exact for the
    gain, since ratios do not change with it."""

    gain: float
    haze: float
    profile: np.ndarray  # per channel: haze share, NaN where the channel is not reflectance
    recomputed: tuple[tuple[int, int, int], ...]  # (index channel, first band, second band)
    jitter: float = 0.0

    @classmethod
    def for_channels(
        cls, names: Sequence[str], gain: float, haze: float, jitter: float = 0.0
    ) -> Photometric:
        upper = [name.upper() for name in names]
        profile = np.array(
            [(_HAZE_REFERENCE_NM / WAVELENGTH_NM[n]) ** 4 if n in WAVELENGTH_NM else np.nan
             for n in upper],
            np.float32,
        )  # fmt: skip
        position = {name: k for k, name in enumerate(upper)}
        recomputed = []
        for name, (first, second) in INDEX_BANDS.items():
            if name != "LINE" and {name, first, second} <= position.keys():
                recomputed.append((position[name], position[first], position[second]))
        return cls(gain, haze, profile, tuple(recomputed), jitter)

    @property
    def active(self) -> bool:
        has_bands = bool(np.isfinite(self.profile).any())
        return has_bands and (self.gain > 1 or self.haze > 0 or self.jitter > 0)

    def __call__(self, x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Augmented copy of patches x (n, rows, cols, channels) of physical values."""
        if not self.active:
            return x
        n = len(x)
        factor = np.float32(1)
        if self.jitter > 0:
            factor = np.exp(rng.normal(0, self.jitter, (n, 1, 1, x.shape[-1]))).astype(np.float32)
        log_gain = np.log(self.gain)
        gain = np.exp(rng.uniform(-log_gain, log_gain, (n, 1, 1, 1))).astype(np.float32)
        haze = rng.uniform(-self.haze, self.haze, (n, 1, 1, 1)).astype(np.float32)
        bands = np.isfinite(self.profile)
        shifted = np.maximum(x * (factor * gain) + haze * np.nan_to_num(self.profile), _FLOOR)
        out = np.where(bands, shifted, x).astype(np.float32)
        for index, first, second in self.recomputed:
            values = normalized_difference(out[..., first], out[..., second])
            out[..., index] = np.nan_to_num(values, nan=0.0)
        return out
