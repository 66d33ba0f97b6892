"""`watergee gee selftest`: the exported network on the server against the local Keras model on
the very same pixels.

One computePixels request returns, over a small block of the download lattice, the composite's
features and the network's probabilities computed in Earth Engine; the Keras model then runs on
those features here. Agreement to 1e-4 shows that the server's semantics of every operation the
export uses match ours, the orientation of neighbourhood arrays included.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from watergee.core.config import GeeSettings
from watergee.gee.composite import FEATURE_BANDS, features
from watergee.gee.download import CellGrid, Fetch, answer_planes, ee_fetch, request
from watergee.gee.model_export import TOLERANCE, load_network
from watergee.io.raster import Window
from watergee.models.predictor import Predictor

SIDE = 64
MASK = "network_valid"


@dataclass
class SelftestReport:
    max_difference: float
    pixels: int
    west: float
    north: float

    @property
    def ok(self) -> bool:
        return self.pixels > 0 and self.max_difference <= TOLERANCE


def block_at(settings: GeeSettings, lon: float, lat: float, side: int = SIDE) -> CellGrid:
    """A side x side block of the download lattice centred near (lon, lat)."""
    pixel = settings.cell / settings.cell_pixels
    col = math.floor((lon + 180.0) / pixel) - side // 2
    row = math.floor((90.0 - lat) / pixel) - side // 2
    return CellGrid("selftest", -180.0 + col * pixel, 90.0 - row * pixel, pixel, side)


def selftest(
    folder: Path,
    settings: GeeSettings,
    lon: float,
    lat: float,
    fetch: Fetch | None = None,
) -> SelftestReport:
    import ee

    block = block_at(settings, lon, lat)
    extent = block.side * block.pixel
    region = ee.Geometry.Rectangle(
        [block.west, block.north - extent, block.west + extent, block.north]
    )
    composite = features(settings, region).select(list(FEATURE_BANDS))
    network = load_network(folder)
    probability = network.image(composite)
    valid = probability.mask().reduce(ee.Reducer.min()).rename(MASK)
    image = composite.unmask(0).addBands(probability.unmask(0)).addBands(valid).toFloat()
    params = request(image, block, Window(0, 0, block.side, block.side))
    params["bandIds"] = [*FEATURE_BANDS, *network.bands, MASK]
    answer = (fetch or ee_fetch)(params)
    planes = answer_planes(answer, Window(0, 0, block.side, block.side), "selftest",
                           params["bandIds"])  # fmt: skip
    values, served = planes[: len(FEATURE_BANDS)], planes[len(FEATURE_BANDS) : -1]
    served = np.moveaxis(served, 0, -1).astype(np.float64)
    mask = planes[-1] > 0
    predictor = Predictor(network.metadata, network.model)  # as `watergee classify` computes
    halo = predictor.halo
    inner = block.side - 2 * halo
    local = predictor.window(values, inner, inner)
    valid_inner = mask[halo:-halo, halo:-halo]
    if not valid_inner.any():
        return SelftestReport(0.0, 0, block.west, block.north)
    difference = np.abs(served[halo:-halo, halo:-halo][valid_inner] - local[valid_inner])
    return SelftestReport(float(difference.max()), int(valid_inner.sum()), block.west, block.north)
