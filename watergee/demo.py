"""A small synthetic Sentinel-2 scene with known water, for `make demo` and the tests.

Two tiles, laid out as real products are: a plain folder of L1C-style JP2 band files, and an
L2A .SAFE with R10m/R20m/R60m folders and a processing-baseline 05.09 metadata file (DN offset
-1000). A lake, a meandering river and a pond are water; the ground truth is written beside the
bands so the water indices can be checked against it.

    python -m watergee.demo OUT_FOLDER
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from watergee.io.raster import utm_grid, write_array
from watergee.sentinel2 import BAND_IDS, NATIVE_RESOLUTION

#: Typical surface reflectance of each cover type per band (B01 .. B12).
REFLECTANCE: dict[str, dict[str, float]] = {
    name: dict(zip(BAND_IDS, values, strict=True))
    for name, values in {
        #        B01   B02   B03   B04   B05    B06    B07   B08   B8A   B09   B10    B11   B12
        "water": (.07, .06, .05, .03, .030, .025, .022, .02, .02, .01, .001, .01, .008),
        "forest": (.03, .03, .05, .03, .080, .220, .270, .30, .31, .08, .002, .15, .070),
        "crop": (.04, .04, .07, .05, .110, .300, .360, .40, .41, .10, .002, .24, .130),
        "bare": (.09, .10, .12, .15, .180, .210, .230, .25, .26, .09, .003, .32, .270),
    }.items()
}  # fmt: skip
COVERS = tuple(REFLECTANCE)
UTM33N = 32633


@dataclass(frozen=True)
class DemoTile:
    mgrs: str
    sensing: str
    origin: tuple[float, float]
    layout: str  # "folder" (L1C band files) or "safe" (L2A product)
    offset: int  # DN offset of the product (-1000 from processing baseline 04.00)

    @property
    def id(self) -> str:
        return f"{self.mgrs}_{self.sensing}"


#: Two neighbouring tiles, each cut from the corner where it overlaps the other: T33UUU at its
#: upper-left corner, T33UUV just across the 100 km line (y = 5,900 km) between their squares,
#: so that `clip` and `merge` have a seam to resolve.
TILES = (
    DemoTile("T33UUU", "20230715T101031", (299960.0, 5900040.0), "folder", 0),
    DemoTile("T33UUV", "20230720T101559", (299960.0, 5901800.0), "safe", -1000),
)


def cover_map(size: int, seed: int) -> np.ndarray:
    """Index into COVERS per 10 m pixel: land patches, a lake, a river and a pond."""
    rng = np.random.default_rng(seed)
    rows, cols = np.mgrid[0:size, 0:size].astype(np.float32)
    blocks = rng.integers(1, len(COVERS), size=(8, 8))
    cover = np.kron(blocks, np.ones((size // 8 + 1, size // 8 + 1), dtype=int))[:size, :size]
    cy, cx = size * (0.3 + 0.2 * rng.random()), size * (0.3 + 0.2 * rng.random())
    lake = ((rows - cy) / (0.14 * size)) ** 2 + ((cols - cx) / (0.22 * size)) ** 2 <= 1
    river_centre = size * 0.75 + 0.06 * size * np.sin(rows / size * 4 * np.pi)
    river = np.abs(cols - river_centre) <= 2.5
    pond = (rows - 0.85 * size) ** 2 + (cols - 0.2 * size) ** 2 <= (0.03 * size) ** 2
    cover[lake | river | pond] = COVERS.index("water")
    return cover


def reflectance(cover: np.ndarray, band: str, rng: np.random.Generator) -> np.ndarray:
    table = np.array([REFLECTANCE[name][band] for name in COVERS], dtype=np.float32)
    values = table[cover]
    return values * (1 + 0.04 * rng.standard_normal(cover.shape).astype(np.float32))


def downsample(values: np.ndarray, factor: int) -> np.ndarray:
    """Block means: what a coarser detector pixel sees."""
    rows, cols = values.shape[0] // factor, values.shape[1] // factor
    return values[: rows * factor, : cols * factor].reshape(rows, factor, cols, factor).mean((1, 3))


def _write(path: Path, dn: np.ndarray, origin: tuple[float, float], pixel: int) -> None:
    write_array(path, dn, utm_grid(UTM33N, origin, pixel, dn.shape[1], dn.shape[0]))


def _metadata_xml(tile: DemoTile) -> str:
    offsets = "\n".join(
        f'          <BOA_ADD_OFFSET band_id="{i}">{tile.offset}</BOA_ADD_OFFSET>'
        for i in range(len(BAND_IDS))
    )
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<n1:Level-2A_User_Product xmlns:n1="https://psd-14.sentinel2.eo.esa.int/PSD/User_Product_Level-2A.xsd">
  <n1:General_Info>
    <Product_Info>
      <PROCESSING_BASELINE>05.09</PROCESSING_BASELINE>
      <PRODUCT_TYPE>S2MSI2A</PRODUCT_TYPE>
    </Product_Info>
    <Product_Image_Characteristics>
      <QUANTIFICATION_VALUES_LIST>
        <BOA_QUANTIFICATION_VALUE unit="none">10000</BOA_QUANTIFICATION_VALUE>
      </QUANTIFICATION_VALUES_LIST>
      <BOA_ADD_OFFSET_VALUES_LIST>
{offsets}
      </BOA_ADD_OFFSET_VALUES_LIST>
    </Product_Image_Characteristics>
  </n1:General_Info>
</n1:Level-2A_User_Product>
"""


def band_path(root: Path, tile: DemoTile, band: str, resolution: int) -> Path:
    if tile.layout == "folder":
        return root / tile.id / f"{tile.id}_{band}.jp2"
    safe = root / f"S2B_MSIL2A_{tile.sensing}_N0509_R065_{tile.mgrs}_{tile.sensing[:8]}T130000.SAFE"
    granule = safe / "GRANULE" / f"L2A_{tile.mgrs}_A000000_{tile.sensing}" / "IMG_DATA"
    return granule / f"R{resolution}m" / f"{tile.mgrs}_{tile.sensing}_{band}_{resolution}m.jp2"


def tile_source(root: Path, tile: DemoTile) -> Path:
    """The folder a tile list names for `tile`."""
    path = band_path(root, tile, "B02", 10)
    return path.parent if tile.layout == "folder" else path.parents[4]


def write_tile(root: Path, tile: DemoTile, size: int, seed: int) -> Path:
    """Write one tile's bands (and the water truth on the 10 m grid); returns its source."""
    rng = np.random.default_rng(seed + 1)
    cover = cover_map(size, seed)
    for band in BAND_IDS:
        native = NATIVE_RESOLUTION[band]
        fine = reflectance(cover, band, rng)
        # An L2A product also carries every band at the coarser resolutions.
        resolutions = (
            [native] if tile.layout == "folder" else [r for r in (10, 20, 60) if r >= native]
        )
        for res in resolutions:
            values = downsample(fine, res // 10) if res > 10 else fine
            dn = np.clip(np.rint(values * 10000 - tile.offset), 1, 65535).astype(np.uint16)
            _write(band_path(root, tile, band, res), dn, tile.origin, res)
    source = tile_source(root, tile)
    if tile.layout == "safe":
        (source / "MTD_MSIL2A.xml").write_text(_metadata_xml(tile))
    water = (cover == COVERS.index("water")).astype(np.uint8)
    _write(root / "truth" / f"{tile.id}_water_10m.tif", water, tile.origin, 10)
    return source


def make_demo(root: Path, size: int = 480, seed: int = 7) -> Path:
    """Write the demo scene under `root`; returns its tile list."""
    if size % 60:
        raise ValueError("size must be a multiple of 60 so that every band grid aligns")
    root.mkdir(parents=True, exist_ok=True)
    lines = ["# watergee demo: one L1C-style band folder, one L2A .SAFE (baseline 05.09)"]
    for k, tile in enumerate(TILES):
        source = write_tile(root, tile, size, seed + k)
        lines.append(str(source.relative_to(root)))
    tile_list = root / "tiles.txt"
    tile_list.write_text("\n".join(lines) + "\n")
    truth = sorted((root / "truth").glob("*_water_10m.tif"))  # listed to merge like the maps
    (root / "truth.txt").write_text("".join(f"truth/{p.name}\n" for p in truth))
    return tile_list


if __name__ == "__main__":
    target = Path(sys.argv[1] if len(sys.argv) > 1 else "demo/data")
    size = int(sys.argv[2]) if len(sys.argv) > 2 else 480  # pixels a side
    print(f"demo scene written; tile list: {make_demo(target, size=size)}")
