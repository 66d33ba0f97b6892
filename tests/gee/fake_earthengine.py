"""A computePixels stand-in that answers from a known function of longitude and latitude,
holds every request to Earth Engine's documented limits, and refuses on demand with the very
exceptions earthengine-api raises for HTTP 429 and 503."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import httplib2
import numpy as np
from googleapiclient.errors import HttpError

from watergee.gee.download import MAX_BANDS, MAX_REQUEST_BYTES, MAX_SIDE

REASONS = {
    429: ("RESOURCE_EXHAUSTED", "Too many concurrent aggregations."),
    503: ("UNAVAILABLE", "The service is currently unavailable."),
    400: ("INVALID_ARGUMENT", "Image.load: Image asset 'x' not found."),
}


def api_error(status: int):
    """The EEException earthengine-api raises when the server answers `status`."""
    import ee

    code, message = REASONS[status]
    response = httplib2.Response({"status": status})
    body = json.dumps({"error": {"code": status, "message": message, "status": code}})
    try:  # as the client does: translated while the HTTP error is being handled
        raise HttpError(response, body.encode())
    except HttpError as http_error:
        try:
            raise ee.data._translate_cloud_exception(http_error)
        except ee.EEException as translated:
            return translated


def world(band: str, lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    """The value every request should find at these pixel centres."""
    if band == "valid":
        return (~((lon > 10.05) & (lon < 10.06) & (lat > 50.1))).astype(np.float32)
    if band == "label":  # water where MNDWI is high, as a QA water flag would say
        return (world("MNDWI", lon, lat) > 1.0).astype(np.float32)
    k = sum(map(ord, band)) % 7 + 1
    return (np.sin(lon * 40 * k) * np.cos(lat * 30) + k / 10).astype(np.float32)


def corner(x: float, y: float) -> tuple[int, int]:
    """A request's (or cell's first block's) north-west corner, as refusals are keyed."""
    return round(x * 1e6), round(y * 1e6)


class FakeComputePixels:
    def __init__(self, refuse: dict[tuple[int, int], list[int]] | None = None,
                 delay: float = 0.0) -> None:  # fmt: skip
        self.refuse = {k: list(v) for k, v in (refuse or {}).items()}
        self.delay = delay
        self.lock = threading.Lock()
        self.flying = 0
        self.most_flying = 0
        self.calls = 0
        self.refused = 0
        self.violations: list[str] = []

    def refuse_cell(self, cell, statuses: list[int]) -> None:
        """Answer the first block of `cell` with these HTTP statuses, one per request."""
        self.refuse[corner(cell.west, cell.north)] = list(statuses)

    def __call__(self, params: dict) -> np.ndarray:
        with self.lock:
            self.flying += 1
            self.most_flying = max(self.most_flying, self.flying)
            self.calls += 1
        try:
            return self._answer(params)
        finally:
            with self.lock:
                self.flying -= 1

    def _answer(self, params: dict) -> np.ndarray:
        grid = params["grid"]
        width, height = grid["dimensions"]["width"], grid["dimensions"]["height"]
        bands = params["bandIds"]
        size = width * height * len(bands) * 4
        if size > MAX_REQUEST_BYTES or max(width, height) > MAX_SIDE or len(bands) > MAX_BANDS:
            self.violations.append(f"{width}x{height}x{len(bands)}")
            raise api_error(400)
        affine = grid["affineTransform"]
        key = corner(affine["translateX"], affine["translateY"])
        with self.lock:
            statuses = self.refuse.get(key)
            status = statuses.pop(0) if statuses else None
            if status is not None:
                self.refused += 1
        if status is not None:
            raise api_error(status)
        if self.delay:
            time.sleep(self.delay)
        cols = affine["translateX"] + (np.arange(width) + 0.5) * affine["scaleX"]
        rows = affine["translateY"] + (np.arange(height) + 0.5) * affine["scaleY"]
        lon, lat = np.meshgrid(cols, rows)
        out = np.zeros((height, width), dtype=[(b, np.float32) for b in bands])
        for band in bands:
            out[band] = world(band, lon, lat)
        return out


def run_slowly(out: str, grid: str) -> None:
    """A download that takes its time, for a test to kill it mid-run (run as a child)."""
    from tests.gee.test_download import SETTINGS, run_download

    run_download(Path(out), Path(grid), FakeComputePixels(delay=0.15), SETTINGS)
