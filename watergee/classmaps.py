"""Class maps as the product stages see them: the one to read for a tile, its style, and the
per-window operations on class codes (extract one class, transfer codes through a table)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from osgeo import gdal

from watergee.core import layout
from watergee.core.config import Settings, TransferSettings, read_yaml
from watergee.core.errors import ConfigError, TileInputError
from watergee.core.tiles import Tile
from watergee.io.raster import ClassStyle, open_raster


def open_class_map(
    tile: Tile, settings: Settings, out: Path
) -> tuple[Path, gdal.Dataset, ClassStyle]:
    """The class map a product stage reads for `tile`, open, with its style and a nodata."""
    work = settings.product.work or out
    path = layout.class_map(work, tile, settings.product.mode, settings.product.input)
    if not path.exists():
        makers = {layer: stage for stage, layer in layout.PRODUCT_LAYERS.items()}
        made_by = makers.get(settings.product.input, "classify")
        raise TileInputError(f"{path}: not found (run `watergee {made_by}` first)")
    ds, style = open_class_raster(path)
    return path, ds, style


def open_class_raster(path: Path) -> tuple[gdal.Dataset, ClassStyle]:
    """A class map, open, with its style: integer pixels with a nodata value (or uint8)."""
    if not path.exists():
        raise TileInputError(f"{path}: class map not found")
    ds = open_raster(path)
    style = ClassStyle.of(ds)
    if not np.issubdtype(style.dtype, np.integer):
        raise TileInputError(f"{path}: a class map must have integer pixels, not {style.dtype}")
    if style.nodata is None and style.dtype != np.uint8:
        raise TileInputError(f"{path}: has no nodata value")
    return ds, style


def nodata_of(style: ClassStyle) -> int:
    return int(style.nodata) if style.nodata is not None else 255


def read_table(opts: TransferSettings) -> TransferSettings:
    """The transfer settings with the table file's entries applied."""
    if opts.table_file is None:
        return opts
    from pydantic import ValidationError

    data = read_yaml(opts.table_file, "transfer table")
    try:
        return opts.model_copy(
            update=dict(
                TransferSettings.model_validate({**data, "table_file": opts.table_file}).model_dump(
                    exclude={"table_file"}
                )
            )
        )
    except ValidationError as exc:
        problems = "; ".join(f"'{'.'.join(map(str, e['loc']))}': {e['msg']}" for e in exc.errors())
        raise ConfigError(f"{opts.table_file}: {problems}") from None


def transfer_lookup(
    opts: TransferSettings, codes: np.ndarray, origin: Path, nodata: int
) -> dict[int, int]:
    """New code for each code present; a code missing from the table (and no default) is an
    error naming the code and the file."""
    table = {}
    for code in (int(c) for c in codes):
        if code == nodata:
            continue
        if code in opts.table:
            table[code] = opts.table[code]
        elif opts.default is not None:
            table[code] = opts.default
        else:
            raise TileInputError(
                f"{origin}: class {code} is not in transfer.table (add it, or set transfer.default)"
            )
    return table


def transfer(data: np.ndarray, lookup: dict[int, int], nodata: int) -> np.ndarray:
    out = np.full(data.shape, nodata, data.dtype)
    for old, new in lookup.items():
        out[data == old] = new
    return out


def extract(data: np.ndarray, class_id: int, value: str, nodata: int) -> np.ndarray:
    hit = data == class_id
    out = np.where(hit, 1 if value == "one" else class_id, 0).astype(np.uint8)
    out[data == nodata] = 255
    return out
