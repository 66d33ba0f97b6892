"""Where each stage puts each tile's outputs under the output folder: one place, so that a
stage finds what the stage before it wrote."""

from __future__ import annotations

from pathlib import Path

from watergee.core.errors import MissingBandError
from watergee.core.tiles import Tile

STATE_DIR = ".watergee"
#: The product stages that remake a class map, and the raster each writes (its --input name).
PRODUCT_LAYERS = {"clip": "clipped", "label-transfer": "transferred", "sieve": "sieved"}


def tile_dir(out: Path, tile: Tile) -> Path:
    return out / tile.id


def resampled_band(out: Path, tile: Tile, band: str) -> Path:
    return tile_dir(out, tile) / f"{tile.id}_{band}_10m.tif"


def stack(out: Path, tile: Tile) -> Path:
    return tile_dir(out, tile) / f"{tile.id}_S2_10band_10m.tif"


def indices(out: Path, tile: Tile) -> Path:
    return tile_dir(out, tile) / f"{tile.id}_indices_10m.tif"


def input_stack(out: Path, tile: Tile) -> Path:
    """The multi-band raster a tile's analysis stages read: the tile input itself when it is
    a raster file, else the 10-band stack that `combine` wrote."""
    return tile.source if tile.source.is_file() else stack(out, tile)


def require_stack(folder: Path, tile: Tile) -> Path:
    """The tile's input stack, or an error saying which stage makes it."""
    path = input_stack(folder, tile)
    if not path.exists():
        raise MissingBandError(f"{path}: stack not found (run `watergee combine` first)")
    return path


def segments(out: Path, tile: Tile) -> Path:
    return tile_dir(out, tile) / f"{tile.id}_segments.tif"


def centroids(out: Path, tile: Tile) -> Path:
    return tile_dir(out, tile) / f"{tile.id}_segments.gpkg"


def sample_dir(out: Path, tile: Tile) -> Path:
    return tile_dir(out, tile)


def sample_summary(out: Path, tile: Tile) -> Path:
    return tile_dir(out, tile) / "samples.json"


def sample_manifest(out: Path) -> Path:
    return out / "manifest.json"


def classes(out: Path, tile: Tile, mode: str) -> Path:
    return tile_dir(out, tile) / f"{tile.id}_classes_{mode}.tif"


def probabilities(out: Path, tile: Tile, mode: str) -> Path:
    return tile_dir(out, tile) / f"{tile.id}_probabilities_{mode}.tif"


def quicklook(out: Path, tile: Tile, mode: str) -> Path:
    return tile_dir(out, tile) / f"{tile.id}_classes_{mode}.png"


def product(out: Path, tile: Tile, name: str, suffix: str = "tif") -> Path:
    """What a product stage made of a tile: <id>_clipped.tif, <id>_sieved.tif, ..."""
    return tile_dir(out, tile) / f"{tile.id}_{name}.{suffix}"


def class_map(out: Path, tile: Tile, mode: str, layer: str = "classes") -> Path:
    """The raster the product stages read: the product named `layer` (clipped, sieved, ...),
    or for "classes" the tile input itself when it is a raster, else the class map `classify`
    wrote in that mode."""
    if layer != "classes":
        return product(out, tile, layer)
    return tile.source if tile.source.is_file() else classes(out, tile, mode)


def mosaic(out: Path, run: Tile) -> Path:
    """A run-wide product: <out>/<name>/<name>.tif."""
    return tile_dir(out, run) / f"{run.id}.tif"


def mosaic_list(out: Path, run: Tile) -> Path:
    """A tile list naming the mosaic: <out>/<name>.txt, the product stages' --tiles."""
    return out / f"{run.id}.txt"


def report(out: Path, run: Tile, suffix: str) -> Path:
    """A run-wide report: <out>/<name>/<name>.json, .html, .png, -sample.gpkg."""
    return tile_dir(out, run) / f"{run.id}{suffix}"


def denoised(out: Path, tile: Tile) -> Path:
    return tile_dir(out, tile) / f"{tile.id}_water_denoised.tif"


def denoise_report(out: Path, tile: Tile) -> Path:
    return tile_dir(out, tile) / f"{tile.id}_denoise.json"


def denoised_list(out: Path) -> Path:
    """The corrected labels of a denoise run, one per tile: the next stage's --labels."""
    return out / "denoised.txt"


def downloaded_tiles(out: Path) -> Path:
    """The tile list of the cells an Earth Engine download holds (features/<id>.tif)."""
    return out / "tiles.txt"


def downloaded_features(out: Path) -> Path:
    """The folder of the cells' features (features/<id>.tif): the tiles of the steps after."""
    return out / "features"


def download_state(out: Path) -> Path:
    """Where a download keeps each cell's record and its failed list."""
    return out / STATE_DIR / "gee"


def downloaded_labels(out: Path) -> Path:
    """The folder of the cells' noisy water labels (labels/<id>.tif)."""
    return out / "labels"


def record(out: Path, tile: Tile, stage: str) -> Path:
    return tile_dir(out, tile) / STATE_DIR / f"{stage}.json"


def lock(out: Path, tile: Tile, stage: str) -> Path:
    return tile_dir(out, tile) / STATE_DIR / f"{stage}.lock"


def runs_dir(out: Path) -> Path:
    return out / STATE_DIR / "runs"


def logs_dir(out: Path) -> Path:
    return out / STATE_DIR / "logs"
