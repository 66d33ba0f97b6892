"""Superpixels for whole tiles, segmented block by block without seams.

A tile is too large to segment at once (SLIC on 10980 x 10980 px holds several float64 copies of
the image), so each block is segmented with a margin of context, and a segment is kept only by
the block that holds its centroid. Segments therefore cross block edges freely; the thin slivers
that no block keeps take the label of the nearest kept segment.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage
from skimage.segmentation import slic

from watergee.io.raster import Window


def stretch(values: np.ndarray, low: np.ndarray, high: np.ndarray) -> np.ndarray:
    """(bands, rows, cols) with NaN -> (rows, cols, bands) in 0..1; NaN becomes 0."""
    span = np.where(high > low, high - low, 1.0).astype(np.float32)
    scaled = (values - low[:, None, None].astype(np.float32)) / span[:, None, None]
    scaled = np.clip(np.nan_to_num(scaled, nan=0.0), 0.0, 1.0)
    return np.moveaxis(scaled, 0, -1)


def segment_block(
    image: np.ndarray,
    mask: np.ndarray,
    region_size: int,
    compactness: float,
    lab: bool,
    sigma: float,
    max_iter: int,
) -> np.ndarray:
    """SLIC labels (1..n, 0 outside `mask`) for one block, about one segment per region_size^2.

    SLIC runs on the whole block from its regular seed grid, with no data painted black, and
    the labels are cleared outside `mask` afterwards: SLIC's own mask option seeds by k-means
    over every masked pixel, which is orders of magnitude slower on a partly empty block.
    """
    count = max(1, round(mask.size / region_size**2))
    labels = slic(
        image,
        n_segments=count,
        compactness=compactness,
        max_num_iter=max_iter,
        sigma=sigma,
        convert2lab=lab and image.shape[-1] == 3,
        enforce_connectivity=True,
        start_label=1,
        channel_axis=-1,
    )
    labels[~mask] = 0
    return labels


def grow(core: Window, margin: int, width: int, height: int) -> Window:
    """`core` widened by `margin` on every side, cut to the raster."""
    col, row = max(core.col - margin, 0), max(core.row - margin, 0)
    right = min(core.col + core.width + margin, width)
    bottom = min(core.row + core.height + margin, height)
    return Window(col, row, right - col, bottom - row)


def place_block(
    labels: np.ndarray, block: np.ndarray, ext: Window, core: Window, next_id: int
) -> int:
    """Copy into the tile `labels` the segments of `block` (segmented over `ext`) whose centroid
    lies in `core`, on pixels still unassigned; returns the next free id."""
    flat = block.ravel()
    counts = np.bincount(flat)
    rows, cols = np.indices(block.shape)
    with np.errstate(invalid="ignore", divide="ignore"):
        cr = np.bincount(flat, weights=rows.ravel(), minlength=len(counts)) / counts + ext.row
        cc = np.bincount(flat, weights=cols.ravel(), minlength=len(counts)) / counts + ext.col
    keep = (
        (counts > 0)
        & (cr >= core.row)
        & (cr < core.row + core.height)
        & (cc >= core.col)
        & (cc < core.col + core.width)
    )
    keep[0] = False
    kept = int(keep.sum())
    new_ids = np.zeros(len(counts), dtype=np.uint32)
    new_ids[keep] = np.arange(next_id, next_id + kept, dtype=np.uint32)
    mapped = new_ids[block]
    target = labels[ext.slices]
    free = (target == 0) & (mapped > 0)
    target[free] = mapped[free]
    return next_id + kept


def fill_gaps(
    labels: np.ndarray, valid: np.ndarray, ext: Window, core: Window, next_id: int
) -> int:
    """Give every valid, unassigned pixel of `core` the label of the nearest assigned pixel
    within `ext`; pixels with none in reach become segments of their own."""
    window = labels[ext.slices]
    inner = core.inside(ext)
    gaps = valid[ext.slices] & (window == 0)
    if not gaps[inner].any():
        return next_id
    assigned = window > 0
    if assigned.any():
        nearest = ndimage.distance_transform_edt(
            ~assigned, return_distances=False, return_indices=True
        )
        filled = window[nearest[0], nearest[1]]
        core_view, core_gaps = window[inner], gaps[inner]
        core_view[core_gaps] = filled[inner][core_gaps]
        return next_id
    components, count = ndimage.label(gaps[inner])
    core_view = window[inner]
    hit = components > 0
    core_view[hit] = components[hit].astype(np.uint32) + np.uint32(next_id - 1)
    return next_id + count


def compact_ids(labels: np.ndarray, size: int) -> int:
    """Renumber labels (all < `size`) in place to 1..n without holes, keeping their order;
    returns n. Works in row strips: bincount on a whole tile would copy it to int64."""
    present = np.zeros(size, bool)
    for start in range(0, labels.shape[0], 1024):
        present |= np.bincount(labels[start : start + 1024].ravel(), minlength=size) > 0
    present[0] = False
    lut = np.zeros(size, dtype=np.uint32)
    lut[present] = np.arange(1, int(present.sum()) + 1, dtype=np.uint32)
    for start in range(0, labels.shape[0], 1024):
        labels[start : start + 1024] = lut[labels[start : start + 1024]]
    return int(present.sum())


class SegmentStats:
    """Per-segment pixel counts, centroids, band means and seed pixels, accumulated window by
    window so a whole tile's statistics never need the whole image in memory."""

    def __init__(self, count: int, bands: int) -> None:
        self.count = count
        size = count + 1
        self.pixels = np.zeros(size, np.int64)
        self.sum_row = np.zeros(size)
        self.sum_col = np.zeros(size)
        self.sums = np.zeros((bands, size))
        self.valid = np.zeros((bands, size), np.int64)
        self.seed_key = np.full(size, np.iinfo(np.int64).max, np.int64)

    def add(self, labels: np.ndarray, window: Window, values: np.ndarray) -> None:
        flat = labels.ravel().astype(np.int64)
        size = self.count + 1
        rows, cols = np.indices(labels.shape)
        self.pixels += np.bincount(flat, minlength=size)
        self.sum_row += np.bincount(flat, weights=(rows + window.row).ravel(), minlength=size)
        self.sum_col += np.bincount(flat, weights=(cols + window.col).ravel(), minlength=size)
        for k, band in enumerate(values):
            ok = ~np.isnan(band.ravel())
            self.sums[k] += np.bincount(flat[ok], weights=band.ravel()[ok], minlength=size)
            self.valid[k] += np.bincount(flat[ok], minlength=size)

    @property
    def centroids(self) -> tuple[np.ndarray, np.ndarray]:
        with np.errstate(invalid="ignore", divide="ignore"):
            return self.sum_row / self.pixels, self.sum_col / self.pixels

    @property
    def means(self) -> np.ndarray:
        with np.errstate(invalid="ignore", divide="ignore"):
            return self.sums / self.valid

    def add_seeds(self, labels: np.ndarray, window: Window, width: int) -> None:
        """Track, per segment, its pixel nearest the centroid (ties: the first in raster
        order): a pixel surely inside the segment, where object-based samples are taken."""
        cr, cc = self.centroids
        flat = labels.ravel().astype(np.int64)
        rows, cols = np.indices(labels.shape)
        rows, cols = (rows + window.row).ravel(), (cols + window.col).ravel()
        dist = (rows - cr[flat]) ** 2 + (cols - cc[flat]) ** 2
        key = np.minimum(np.rint(dist * 16), 2**28).astype(np.int64) << 34
        key += rows.astype(np.int64) * width + cols
        np.minimum.at(self.seed_key, flat, key)

    def seeds(self, width: int) -> tuple[np.ndarray, np.ndarray]:
        index = self.seed_key & ((1 << 34) - 1)
        return index // width, index % width
