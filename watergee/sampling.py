"""Drawing training samples from label rasters: reproducible, without replacement, centred.

Each candidate pixel gets a random key hashed from (seed, tile, its row and column); the k
candidates with the smallest keys are a uniform sample without replacement, and because keys
depend only on the seed and position, the choice depends neither on the window size or order
nor on how many workers ran.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage

from watergee.core.errors import TileInputError


def patch_origin(index: np.ndarray | int, size: int) -> np.ndarray | int:
    """First row (or column) of the patch of side `size` whose sample pixel is `index`: the
    sample sits at offset size // 2 (exact centre for odd sizes)."""
    return index - size // 2


def pixel_keys(
    seed: int, tile_id: str, rows: np.ndarray, cols: np.ndarray, *parts: int
) -> np.ndarray:
    """A uniform key in [0, 1) per pixel, a function of (seed, tile, parts, row, col) alone:
    splitmix64 of the pixel's position mixed with a digest of the rest."""
    digest = hashlib.sha256(f"{seed}:{tile_id}:{':'.join(map(str, parts))}".encode()).digest()
    base = np.uint64(int.from_bytes(digest[:8], "little"))
    z = (np.asarray(rows, np.uint64) << np.uint64(32)) ^ np.asarray(cols, np.uint64) ^ base
    z = z + np.uint64(0x9E3779B97F4A7C15)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    z = z ^ (z >> np.uint64(31))
    return (z >> np.uint64(11)).astype(np.float64) * 2.0**-53


def held_out_blocks(
    seed: int,
    tile_id: str,
    rows: np.ndarray,
    cols: np.ndarray,
    classes: np.ndarray,
    share: float,
    block: int,
) -> np.ndarray:
    """True for validation samples: per class, the samples of a keyed `share` of the square
    blocks of side `block` that hold the class, so that no validation pixel has a training
    neighbour of its own class in the same block (neighbouring pixels of one field or polygon are
    not independent). A class found in two blocks or more keeps at least one block back and
    one for training; a class in a single block is all training."""
    held = np.zeros(len(rows), bool)
    if share <= 0:
        return held
    block_rows, block_cols = rows // block, cols // block
    for cls in np.unique(classes):
        mine = np.flatnonzero(classes == cls)
        keys = pixel_keys(seed, tile_id, block_rows[mine], block_cols[mine], -2, int(cls))
        blocks = np.unique(keys)
        if len(blocks) < 2:
            continue
        chosen = keys < share
        if not chosen.any():
            chosen = keys == blocks[0]
        elif chosen.all():
            chosen = keys != blocks[-1]
        held[mine] = chosen
    return held


def code_lookup(
    codes: np.ndarray, classes: dict[int, int], ignore: list[int], unmapped: str, origin: str
) -> dict[int, int]:
    """Class id per label code present; ignored codes are absent. An unmapped code is an
    error naming `origin` unless `unmapped` is 'ignore'."""
    table: dict[int, int] = {}
    for code in (int(c) for c in codes):
        if code in ignore:
            continue
        if not classes:
            table[code] = code
        elif code in classes:
            table[code] = classes[code]
        elif unmapped == "error":
            raise TileInputError(
                f"{origin}: label code {code} is not in the class table "
                "(map it in sample.classes, list it in sample.ignore, or set "
                "sample.unmapped: ignore)"
            )
    return table


def patch_fits(valid: np.ndarray, size: int) -> np.ndarray:
    """True where a patch of side `size` with its sample pixel there lies wholly on valid
    pixels. `valid` is False outside the tile, so edge patches are excluded too."""
    # scipy centres a footprint of side n at index n // 2: the same convention as patches.
    before, after = size // 2, size - 1 - size // 2
    if valid.all():  # the usual window: only the tile's own border is short of context
        out = np.zeros(valid.shape, bool)
        out[before : valid.shape[0] - after, before : valid.shape[1] - after] = True
        return out
    # A square erodes as its column and then its row: 2n instead of n^2 tests a pixel.
    column = ndimage.binary_erosion(valid, np.ones((size, 1), bool), border_value=0)
    return ndimage.binary_erosion(column, np.ones((1, size), bool), border_value=0)


@dataclass
class Candidates:
    """The best (smallest-key) candidates seen so far for one class."""

    limit: int
    keys: np.ndarray = field(default_factory=lambda: np.empty(0))
    rows: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))
    cols: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))
    codes: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))

    def offer(self, keys, rows, cols, codes) -> None:
        self.keys = np.concatenate([self.keys, keys])
        self.rows = np.concatenate([self.rows, rows])
        self.cols = np.concatenate([self.cols, cols])
        self.codes = np.concatenate([self.codes, codes])
        if len(self.keys) > self.limit:
            keep = np.argpartition(self.keys, self.limit)[: self.limit]
            self.keys, self.rows = self.keys[keep], self.rows[keep]
            self.cols, self.codes = self.cols[keep], self.codes[keep]

    def ordered(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(keys, rows, cols, codes) in key order."""
        order = np.lexsort((self.cols, self.rows, self.keys))
        return self.keys[order], self.rows[order], self.cols[order], self.codes[order]


def spaced(rows: np.ndarray, cols: np.ndarray, distance: int) -> np.ndarray:
    """Indices of candidates kept, in order, so that no two kept ones lie closer than
    `distance` pixels (Chebyshev) to each other."""
    if distance <= 1:
        return np.arange(len(rows))
    grid: dict[tuple[int, int], list[tuple[int, int]]] = {}
    kept = []
    for i, (r, c) in enumerate(zip(rows.tolist(), cols.tolist(), strict=True)):
        gr, gc = r // distance, c // distance  # neighbours lie within one cell
        near = (
            p for dr in (-1, 0, 1) for dc in (-1, 0, 1) for p in grid.get((gr + dr, gc + dc), ())
        )
        if any(abs(r - pr) < distance and abs(c - pc) < distance for pr, pc in near):
            continue
        grid.setdefault((gr, gc), []).append((r, c))
        kept.append(i)
    return np.array(kept, dtype=np.int64)
