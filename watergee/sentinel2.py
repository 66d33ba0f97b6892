"""Sentinel-2 facts: band names and resolutions, band files on disk, reflectance scaling."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

from watergee.core.errors import MissingBandError, TileInputError
from watergee.core.tiles import Tile, parse_tile_list, read_tile_list

#: Every MSI band with its native pixel size in metres, in the product's band_id order.
NATIVE_RESOLUTION: dict[str, int] = {
    "B01": 60, "B02": 10, "B03": 10, "B04": 10, "B05": 20, "B06": 20, "B07": 20,
    "B08": 10, "B8A": 20, "B09": 60, "B10": 60, "B11": 20, "B12": 20,
}  # fmt: skip
BAND_IDS: tuple[str, ...] = tuple(NATIVE_RESOLUTION)

BANDS_10M: tuple[str, ...] = ("B02", "B03", "B04", "B08")
BANDS_20M: tuple[str, ...] = ("B05", "B06", "B07", "B8A", "B11", "B12")

#: Band order of the 10-band 10 m stack written by `combine` (OSMLULC's feature space).
STACK_ORDER: tuple[str, ...] = BANDS_10M + BANDS_20M

BAND_NAMES: dict[str, str] = {
    "B01": "coastal aerosol", "B02": "blue", "B03": "green", "B04": "red",
    "B05": "red edge 1", "B06": "red edge 2", "B07": "red edge 3", "B08": "NIR",
    "B8A": "narrow NIR", "B09": "water vapour", "B10": "cirrus", "B11": "SWIR1",
    "B12": "SWIR2",
}  # fmt: skip

_BAND_FILE = re.compile(
    r"^(?P<prefix>.*?)_?(?P<band>B(?:0[1-9]|1[0-2]|8A))(?:_(?P<res>\d+)m)?\.(?:jp2|tiff?)$",
    re.IGNORECASE,
)
_SAFE_NAME = re.compile(
    r"^S2[A-D]_MSIL(?:1C|2A)_(?P<sensing>\d{8}T\d{6})_N\d{4}_R\d{3}_(?P<tile>T\d{2}[A-Z]{3})_"
)
_ZERO_SCALING_NOTE = "no product metadata; offset 0 assumed"


@dataclass(frozen=True)
class BandFile:
    band: str
    path: Path
    resolution: int | None  # from the file name (L2A `_10m`), None when the name has none

    @property
    def prefix(self) -> str:
        match = _BAND_FILE.match(self.path.name)
        return match.group("prefix") if match else self.path.stem


def _image_folders(source: Path) -> list[Path]:
    """Where band files live: a .SAFE's GRANULE/*/IMG_DATA (and its R10m/R20m/R60m), else the
    folder itself. Quality masks (QI_DATA, MSK_*) are never band files."""
    if source.suffix.upper() == ".SAFE" or (source / "GRANULE").is_dir():
        folders = sorted(source.glob("GRANULE/*/IMG_DATA"))
        return [f for folder in folders for f in [folder, *sorted(folder.glob("R*m"))]]
    return [source]


def scan_band_files(source: Path) -> list[BandFile]:
    found: list[BandFile] = []
    for folder in _image_folders(source):
        for path in sorted(folder.iterdir()):
            match = _BAND_FILE.match(path.name)
            if not match or not path.is_file() or path.name.upper().startswith("MSK_"):
                continue
            res = match.group("res")
            found.append(BandFile(match.group("band").upper(), path, int(res) if res else None))
    return found


def band_files(source: Path, bands: tuple[str, ...] | list[str]) -> dict[str, Path]:
    """Map each requested band to its file at native resolution.

    L2A products hold several resolutions of one band (R10m/R20m/R60m); the native one is
    kept so no band is ever read at a degraded resolution.
    """
    if not source.exists():
        raise TileInputError(f"{source}: tile input not found")
    if not source.is_dir():
        raise TileInputError(f"{source}: tile input must be a .SAFE folder or a band folder")
    by_band: dict[str, list[BandFile]] = {}
    for item in scan_band_files(source):
        by_band.setdefault(item.band, []).append(item)
    chosen: dict[str, Path] = {}
    missing = []
    for band in bands:
        candidates = by_band.get(band, [])
        native = [c for c in candidates if c.resolution in (None, NATIVE_RESOLUTION[band])]
        if not native:
            missing.append(band)
            continue
        if len(native) > 1:
            names = ", ".join(c.path.name for c in native)
            raise TileInputError(f"{source}: band {band} found more than once ({names})")
        chosen[band] = native[0].path
    if missing:
        raise MissingBandError(f"{source}: missing band(s) {', '.join(missing)}")
    return chosen


def tile_id(source: Path) -> str:
    """A tile's id: MGRS tile and sensing time (e.g. T33UUU_20170216T102101) where the
    product or its band files say so, else the folder name."""
    match = _SAFE_NAME.match(source.name)
    if match:
        return f"{match.group('tile')}_{match.group('sensing')}"
    if source.is_dir():
        prefixes = {b.prefix for b in scan_band_files(source) if b.prefix}
        if len(prefixes) == 1:
            return prefixes.pop()
    if source.is_file():
        return source.stem
    name = source.name[:-5] if source.name.upper().endswith(".SAFE") else source.name
    return name or "tile"


@dataclass(frozen=True)
class Scaling:
    """Reflectance = (DN + offset[band]) / quantification; DN == nodata is no data."""

    quantification: float
    offsets: dict[str, float]
    source: str
    metadata: Path | None = None  # the product metadata file read, an input of the tile

    def scale_offset(self, band: str) -> tuple[float, float]:
        """GDAL-style (scale, offset) such that reflectance = DN * scale + offset."""
        scale = 1.0 / self.quantification
        return scale, self.offsets.get(band, 0.0) * scale


def _metadata_file(source: Path) -> Path | None:
    for folder in (source, source.parent):
        for name in ("MTD_MSIL2A.xml", "MTD_MSIL1C.xml"):
            if (folder / name).is_file():
                return folder / name
    return None


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def read_scaling(source: Path, quantification: float, offset: float | str) -> Scaling:
    """Scaling of a product: from its MTD_MSIL1C/2A.xml when `offset` is 'auto', else fixed."""
    if offset != "auto":
        return Scaling(quantification, dict.fromkeys(BAND_IDS, float(offset)), "settings")
    mtd = _metadata_file(source) if source.is_dir() else None
    if mtd is None:
        return Scaling(quantification, dict.fromkeys(BAND_IDS, 0.0), _ZERO_SCALING_NOTE)
    try:
        root = ET.parse(mtd).getroot()
    except (ET.ParseError, OSError) as exc:
        raise TileInputError(f"{mtd}: unreadable product metadata ({exc})") from None
    quant = quantification
    offsets = dict.fromkeys(BAND_IDS, 0.0)
    for elem in root.iter():
        tag = _local(elem.tag)
        if tag in ("QUANTIFICATION_VALUE", "BOA_QUANTIFICATION_VALUE") and elem.text:
            quant = float(elem.text)
        elif tag in ("RADIO_ADD_OFFSET", "BOA_ADD_OFFSET") and elem.text:
            index = int(elem.get("band_id", "-1"))
            if 0 <= index < len(BAND_IDS):
                offsets[BAND_IDS[index]] = float(elem.text)
    return Scaling(quant, offsets, mtd.name, mtd)


def read_tiles(path: Path) -> list[Tile]:
    """A tile list whose tiles are named by MGRS tile and sensing time (`tile_id`)."""
    return read_tile_list(path, tile_id)


def parse_tiles(text: str, base: Path, origin: str) -> list[Tile]:
    """`read_tiles` for a list given as text."""
    return parse_tile_list(text, base, origin, tile_id)
