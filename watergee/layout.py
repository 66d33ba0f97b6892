"""Where each stage puts each tile's outputs under the output folder: one place, so that a
stage finds what the stage before it wrote."""

from __future__ import annotations

from pathlib import Path

from watergee.tiles import Tile

STATE_DIR = ".watergee"


def tile_dir(out: Path, tile: Tile) -> Path:
    return out / tile.id


def resampled_band(out: Path, tile: Tile, band: str) -> Path:
    return tile_dir(out, tile) / f"{tile.id}_{band}_10m.tif"


def stack(out: Path, tile: Tile) -> Path:
    return tile_dir(out, tile) / f"{tile.id}_S2_10band_10m.tif"


def indices(out: Path, tile: Tile) -> Path:
    return tile_dir(out, tile) / f"{tile.id}_indices_10m.tif"


def record(out: Path, tile: Tile, stage: str) -> Path:
    return tile_dir(out, tile) / STATE_DIR / f"{stage}.json"


def runs_dir(out: Path) -> Path:
    return out / STATE_DIR / "runs"
