"""PNG quicklooks: a class map in its colours with a small legend, beside the tile in true
colour, small enough to glance at in a file browser. The class map and the stack's three
bands are read through their overviews where they have them (a JPEG2000 band's wavelet
levels; a written stack only with `output.overviews: all`), else averaged from full
resolution."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from osgeo import gdal

from watergee.core.atomic import atomic_path
from watergee.core.errors import OutputError
from watergee.io.raster import ClassStyle, band_descriptions, gdal_reason, open_raster

TRUE_COLOUR = ("B04", "B03", "B02")
GAP = 8
SWATCH = 12


def _size(ds: gdal.Dataset, max_side: int) -> tuple[int, int]:
    scale = max(1, -(-max(ds.RasterXSize, ds.RasterYSize) // max_side))
    return -(-ds.RasterXSize // scale), -(-ds.RasterYSize // scale)


def class_image(ds: gdal.Dataset, style: ClassStyle, size: tuple[int, int]) -> np.ndarray:
    """(rows, cols, 4) RGBA of a class map at `size`: its colours, no data transparent."""
    codes = ds.GetRasterBand(1).ReadAsArray(
        buf_xsize=size[0], buf_ysize=size[1], resample_alg=gdal.GRIORA_NearestNeighbour
    )
    image = np.zeros((*codes.shape, 4), np.uint8)  # no data and uncoloured codes: transparent
    for code, rgb in style.colours.items():
        image[codes == code] = (*rgb, 255)
    return image


def _coarsest(band: gdal.Band, size: tuple[int, int]) -> gdal.Band:
    """The band or its coarsest overview still at least `size`: asked to average a virtual
    stack of JPEG2000 band files down, GDAL decodes each at full resolution (10 s a band for a
    full tile, against 0.2 s from the wavelet level). A wavelet level blends no data into the
    pixels beside it, so a swath edge can show a rim one quicklook pixel wide."""
    best = band
    for k in range(band.GetOverviewCount()):
        level = band.GetOverview(k)
        if size[0] <= level.XSize < best.XSize and level.YSize >= size[1]:
            best = level
    return best


def true_colour(ds: gdal.Dataset, size: tuple[int, int]) -> np.ndarray | None:
    """(rows, cols, 3) uint8 true colour of a band stack, each band stretched between its 2nd
    and 98th percentiles; None when the stack lacks B04, B03 or B02."""
    described = band_descriptions(ds)
    if not all(name in described for name in TRUE_COLOUR):
        return None
    planes = []
    for name in TRUE_COLOUR:
        band = ds.GetRasterBand(described.index(name) + 1)
        level = _coarsest(band, size)
        values = level.ReadAsArray(
            buf_xsize=size[0], buf_ysize=size[1], resample_alg=gdal.GRIORA_Average
        ).astype(np.float64)
        nodata = band.GetNoDataValue()
        valid = np.isfinite(values) & ((values != nodata) if nodata is not None else True)
        if not valid.any():
            return None
        low, high = np.percentile(values[valid], (2, 98))
        stretched = np.clip((values - low) / max(high - low, 1e-12), 0, 1) * 255
        planes.append(np.where(valid, stretched, 0).astype(np.uint8))
    return np.dstack(planes)


def write_quicklook(
    source: Path, final: Path, stack: gdal.Dataset | None = None, max_side: int = 1024
) -> None:
    """A PNG of the class map `source` with a legend of its named classes, beside the true
    colour of `stack` when given (at most `max_side` pixels a side each)."""
    from PIL import Image, ImageDraw, ImageFont

    ds = open_raster(source)
    style = ClassStyle.of(ds)
    size = _size(ds, max_side)
    try:
        panels = [Image.fromarray(class_image(ds, style, size), "RGBA")]
        rgb = true_colour(stack, size) if stack is not None else None
    except RuntimeError as exc:
        raise OutputError(f"{final}: cannot read for the quicklook ({gdal_reason(exc)})") from None
    if rgb is not None:
        panels.insert(0, Image.fromarray(rgb, "RGB").convert("RGBA"))
    names = style.names or {code: str(code) for code in style.colours}
    font = ImageFont.load_default()
    rows = [(code, f"{code} {names[code]}") for code in sorted(names)]
    line = SWATCH + 4
    width = sum(p.width for p in panels) + GAP * (len(panels) - 1)
    legend_width = max((int(font.getlength(text)) for _, text in rows), default=0) + SWATCH + 14
    canvas = Image.new(
        "RGBA", (max(width, legend_width), size[1] + GAP + line * len(rows)), (255, 255, 255, 255)
    )
    x = 0
    for panel in panels:
        canvas.alpha_composite(panel, (x, 0))
        x += panel.width + GAP
    draw = ImageDraw.Draw(canvas)
    for i, (code, text) in enumerate(rows):
        y = size[1] + GAP + i * line
        colour = style.colours.get(code, (0, 0, 0))
        draw.rectangle((4, y, 4 + SWATCH, y + SWATCH), fill=colour, outline=(60, 60, 60))
        draw.text((SWATCH + 10, y), text, fill=(0, 0, 0), font=font)
    with atomic_path(final) as tmp:
        try:
            canvas.convert("RGB").save(tmp, format="PNG")
        except OSError as exc:
            raise OutputError(f"{final}: cannot write quicklook ({exc})") from None
