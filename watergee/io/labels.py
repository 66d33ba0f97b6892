"""Finding a tile's label raster: one raster for all tiles, or one per tile in a folder or list."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from watergee.core import layout
from watergee.core.atomic import atomic_path
from watergee.core.errors import TileInputError, TileListError
from watergee.core.records import portable
from watergee.core.tiles import Tile, read_tile_list

if TYPE_CHECKING:
    from watergee.core.runner import Outcome

_MGRS = re.compile(r"T\d{2}[A-Z]{3}")
_RASTER_SUFFIXES = {".tif", ".tiff", ".vrt", ".jp2", ".img"}


def label_raster_for(tile: Tile, labels: Path | None) -> Path:
    """The label raster of a tile: the one raster given, or, from a folder or a list file
    (.txt, one raster per line), the one named by the tile id or else its MGRS tile."""
    if labels is None:
        raise TileInputError("no label raster given (--labels FILE, FOLDER or LIST.txt)")
    if labels.is_dir():
        files = sorted(p for p in labels.iterdir() if p.suffix.lower() in _RASTER_SUFFIXES)
    elif labels.suffix.lower() == ".txt":
        files = [tile.source for tile in read_tile_list(labels)]  # paths only
    else:
        return labels
    for key in (tile.id, *(_MGRS.findall(tile.id)[:1])):
        matches = [p for p in files if key in p.name]
        if len(matches) == 1:
            return matches[0]
        if len(matches) > 1:
            names = ", ".join(p.name for p in matches)
            raise TileInputError(f"{labels}: several label rasters for tile {tile.id} ({names})")
    raise TileInputError(f"{labels}: no label raster named after tile {tile.id}")


def check_labels(labels: Path | None) -> None:
    """A single label raster given for every tile must open (a folder or list is resolved per
    tile)."""
    if labels is not None and labels.is_file() and labels.suffix.lower() != ".txt":
        from watergee.io.raster import open_raster

        open_raster(labels)


def write_denoised_list(results: Sequence[tuple[Tile, Outcome]], settings: Any,
                        out: Path) -> list[Path]:  # fmt: skip
    """OUT/denoised.txt: the corrected label raster of every tile that came through a denoise
    run, one per line; it is what `sample --labels` (and `watergee run`) reads next. Tiles
    listed by an earlier run stay while their raster is there and they did not fail now, so
    re-running only the failed tiles keeps the others."""
    target = layout.denoised_list(out)
    ran = {tile.id: outcome.status for tile, outcome in results}
    kept = {t.id: layout.denoised(out, t) for t, o in results if o.status in ("done", "skipped")}
    try:
        earlier = read_tile_list(target) if target.is_file() else []
    except TileListError:  # empty (every tile failed before): nothing to keep
        earlier = []
    for tile in earlier:
        stem = tile.source.name.removesuffix("_water_denoised.tif")
        if stem not in ran and tile.source.is_file():
            kept[stem] = tile.source
    lines = ["# corrected water labels (1 water, 0 not water, 255 no data), one per tile"]
    lines += [portable(kept[key], out) for key in sorted(kept)]
    with atomic_path(target) as tmp:
        tmp.write_text("\n".join(lines) + "\n")
    return [target]
