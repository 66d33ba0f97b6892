"""Model input channels read from a stack: chosen bands, then computed indices."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from osgeo import gdal

from watergee.core.errors import TileInputError
from watergee.io.raster import Window, band_descriptions, band_index, read_window, resolve_band
from watergee.spectral import INDEX_BANDS, LINE_HALO, compute_indices, required_bands


@dataclass(frozen=True)
class FeatureReader:
    """Reads (channels, rows, cols) windows of physical values from one stack: the bands
    (by 1-based index), then the indices computed as the indices stage computes them."""

    ds: gdal.Dataset
    bands: tuple[int, ...]
    indices: tuple[str, ...] = ()
    #: Other rasters on the same grid appended as channels: (dataset, divisor, name).
    extras: tuple[tuple[gdal.Dataset, float, str], ...] = ()

    @classmethod
    def open(
        cls, ds: gdal.Dataset, bands: Sequence[str | int], indices: Sequence[str]
    ) -> FeatureReader:
        chosen = [resolve_band(ds, b) for b in bands] or list(range(1, ds.RasterCount + 1))
        return cls(ds, tuple(chosen), tuple(indices))

    @property
    def names(self) -> list[str]:
        descriptions = band_descriptions(self.ds)
        names = [descriptions[b - 1] for b in self.bands] + list(self.indices)
        return names + [name for _, _, name in self.extras]

    @property
    def reach(self) -> int:
        """Pixels beyond a window that its channels read (LINE looks two pixels further)."""
        return LINE_HALO if "LINE" in self.indices else 0

    @cached_property
    def _index_sources(self) -> dict[str, int]:
        """Stack band of each band id the indices read."""
        sources = {}
        for band in required_bands(list(self.indices)):
            try:
                sources[band] = band_index(self.ds, band)
            except TileInputError:
                readers = [i for i in self.indices if band in INDEX_BANDS[i]]
                raise TileInputError(
                    f"{self.ds.GetDescription()}: no band described as {band}, which the index "
                    f"channel {readers[0]} reads; a stack without Sentinel-2 band names needs "
                    "its indices set to [] (sample.indices, denoise.indices) and a model "
                    "trained so"
                ) from None
        return sources

    def source_bands(self) -> list[int]:
        """Every stack band read, for validity checks."""
        return sorted({*self.bands, *self._index_sources.values()})

    def read(self, window: Window, halo: int = 0) -> np.ndarray:
        """Channels of `window` grown by `halo`; every stack band is read once."""
        reach = self.reach
        sources = self.source_bands()
        data = read_window(self.ds, window, sources, halo=halo + reach, scaled=True)
        inner = data[:, reach : data.shape[1] - reach, reach : data.shape[2] - reach]
        parts = [inner[[sources.index(b) for b in self.bands]]]
        if self.indices:
            planes = {name: data[sources.index(b)] for name, b in self._index_sources.items()}
            parts.append(compute_indices(planes, list(self.indices), reach))
        for ds, divisor, _ in self.extras:
            parts.append(read_window(ds, window, [1], halo=halo, scaled=True) / np.float32(divisor))
        return np.concatenate(parts)


def extract_patches(
    reader: FeatureReader, rows: np.ndarray, cols: np.ndarray, size: int, block: int = 512
) -> np.ndarray:
    """Patches (n, size, size, channels) with each sample pixel at offset size // 2.

    The raster is read block by block, each block once with the patches' reach around it, and
    every patch centred in a block is cut from that read: the values are those of a read of
    the patch alone (indices included, computed on the same pixels), at a fraction of the
    reads."""
    out = np.empty((len(rows), size, size, len(reader.names)), np.float32)
    if not len(rows):
        return out
    half = size // 2
    keys = (rows // block) * (1 << 20) + cols // block
    order = np.argsort(keys, kind="stable")
    starts = np.flatnonzero(np.r_[True, np.diff(keys[order]) != 0])
    for first, last in zip(starts, [*starts[1:], len(order)], strict=True):
        chosen = order[first:last]
        top, left = int(rows[chosen[0]] // block) * block, int(cols[chosen[0]] // block) * block
        height = int(rows[chosen].max()) - top + 1
        width = int(cols[chosen].max()) - left + 1
        data = reader.read(Window(left - half, top - half, width + size - 1, height + size - 1))
        windows = sliding_window_view(data, (size, size), axis=(1, 2))  # (C, h, w, size, size)
        cut = windows[:, rows[chosen] - top, cols[chosen] - left]  # (C, n, size, size)
        out[chosen] = np.moveaxis(cut, 0, -1)
    return out
