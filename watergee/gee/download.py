"""Grid cells from Earth Engine to GeoTIFFs with computePixels, within the service's limits.

A request may hold at most 48 MiB of uncompressed pixels, 32768 pixels a side and 1024 bands,
so a cell is split into equal blocks that fit and reassembled on disk. At most `concurrency`
requests are in flight (the project's quota: 40 by default). A request refused for quota (429)
or failing on the server (5xx), or lost on the network, is retried with exponential backoff
and jitter; anything else fails its cell alone. Each cell lands atomically as
`features/<id>.tif` (float32, NaN = no data) and `labels/<id>.tif` (uint8: 1 water, 0 not,
255 unknown), then a record naming the expression and grid it came from; a cell whose record
and files are intact is skipped on a re-run, so an interrupted download resumes where it was.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import random
import re
import threading
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from watergee.core import layout
from watergee.core.atomic import atomic_path, remove_partials
from watergee.core.config import GeeSettings, OutputSettings
from watergee.core.records import (
    changed_file,
    output_fingerprints,
    read_record,
    write_json_atomic,
)
from watergee.gee.composite import FEATURE_BANDS, FEATURE_CHANNELS, LABEL, VALID
from watergee.gee.session import EarthEngineError
from watergee.io.raster import (
    BandSpec,
    Grid,
    Window,
    class_band,
    create_geotiff,
    spatial_reference,
)

MAX_REQUEST_BYTES = 48 * 1024 * 1024
MAX_SIDE = 32768
MAX_BANDS = 1024
BANDS = (*FEATURE_BANDS, LABEL, VALID)
VALUE_BYTES = 4  # every band is requested as float32
WATER, LAND, UNKNOWN = 1, 0, 255
RETRY_STATUSES = (429, 500, 502, 503, 504)
#: Messages of refusals worth retrying, where no HTTP status is left: quota and rate (429),
#: server trouble (5xx).
TRANSIENT = re.compile(
    r"too many|quota|rate limit|concurren|unavailable|internal error|backend error|"
    r"try again|temporarily|\b(429|500|502|503|504)\b",
    re.IGNORECASE,
)

#: One computePixels call: request parameters in, a structured array (rows, cols) out.
Fetch = Callable[[dict[str, Any]], np.ndarray]


@dataclass(frozen=True)
class CellGrid:
    """A cell's pixel grid in degrees: its north-west corner, pixel size and side."""

    id: str
    west: float
    north: float
    pixel: float
    side: int

    def grid(self) -> Grid:
        wkt = spatial_reference("EPSG:4326").ExportToWkt()
        return Grid(wkt, (self.west, self.pixel, 0.0, self.north, 0.0, -self.pixel),
                    self.side, self.side)  # fmt: skip


def cell_grids(cells: list[tuple[str, tuple[float, float, float, float]]], settings: GeeSettings
               ) -> list[CellGrid]:  # fmt: skip
    """Each cell's grid: `cell_pixels` a side over the full lattice cell (cells clipped at the
    poles or the antimeridian keep the lattice's pixel size)."""
    pixel = settings.cell / settings.cell_pixels
    return [CellGrid(i, west, north, pixel, settings.cell_pixels)
            for i, (west, _, _, north) in cells]  # fmt: skip


def split(side: int, bands: int, limit: int) -> list[Window]:
    """The fewest equal square blocks of a side x side cell that each fit one request."""
    if bands > MAX_BANDS:
        raise EarthEngineError(f"{bands} bands: a request holds at most {MAX_BANDS}")
    limit = min(limit, MAX_REQUEST_BYTES)
    n = 1
    while True:
        step = math.ceil(side / n)
        if step <= MAX_SIDE and step * step * bands * VALUE_BYTES <= limit:
            break
        n += 1
    return [Window(c, r, min(step, side - c), min(step, side - r))
            for r in range(0, side, step) for c in range(0, side, step)]  # fmt: skip


def request(expression: Any, cell: CellGrid, block: Window) -> dict[str, Any]:
    """computePixels parameters for one block of a cell, on the cell's own pixel grid."""
    return {
        "expression": expression,
        "fileFormat": "NUMPY_NDARRAY",
        "bandIds": list(BANDS),
        "grid": {
            "dimensions": {"width": block.width, "height": block.height},
            "affineTransform": {
                "scaleX": cell.pixel,
                "shearX": 0.0,
                "translateX": cell.west + block.col * cell.pixel,
                "shearY": 0.0,
                "scaleY": -cell.pixel,
                "translateY": cell.north - block.row * cell.pixel,
            },
            "crsCode": "EPSG:4326",
        },
    }


def transient(error: BaseException) -> bool:
    """Whether a failed request is worth another try: by the HTTP status where the client
    kept it (it raises its EEException while handling the HTTP error), else by the message."""
    if isinstance(error, (ConnectionError, TimeoutError)):
        return True
    status = getattr(getattr(error.__context__, "resp", None), "status", None)
    if status is not None:
        return int(status) in RETRY_STATUSES
    import ee

    if isinstance(error, ee.EEException):
        return bool(TRANSIENT.search(str(error)))
    return isinstance(error, OSError)


@dataclass
class Retrying:
    """Calls `fetch`, retrying transient refusals with exponential backoff (each wait drawn
    between half and one and a half times 2^attempt x backoff, at most 64 s). `stop` ends
    every wait and retry at once (an interrupted download must not linger)."""

    fetch: Fetch
    retries: int
    backoff: float
    sleep: Callable[[float], None] | None = None
    rng: random.Random = field(default_factory=random.Random)
    retried: int = 0
    stop: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, params: dict[str, Any]) -> np.ndarray:
        for attempt in range(self.retries + 1):
            if self.stop.is_set():
                raise EarthEngineError("download stopped")
            try:
                return self.fetch(params)
            except Exception as exc:
                if attempt == self.retries or not transient(exc) or self.stop.is_set():
                    raise
                with self.lock:
                    wait_s = min(64.0, self.backoff * 2**attempt) * self.rng.uniform(0.5, 1.5)
                    self.retried += 1
                if self.sleep is not None:
                    self.sleep(wait_s)
                else:
                    self.stop.wait(wait_s)
        raise AssertionError("unreachable")


def ee_fetch(params: dict[str, Any]) -> np.ndarray:
    """The real transport: one computePixels call (the client's own retries are off, so that
    retries follow this module's backoff)."""
    import ee

    return ee.data.computePixels(params)


def answer_planes(
    result: np.ndarray, block: Window, where: str, bands: Sequence[str] = BANDS
) -> np.ndarray:
    """(bands, rows, cols) float32 from computePixels' structured array, checked to hold
    `bands` at the block's size."""
    names = result.dtype.names or ()
    missing = [b for b in bands if b not in names]
    if missing or result.shape != (block.height, block.width):
        raise EarthEngineError(f"{where}: answer has shape {result.shape} and bands "
                               f"{list(names)}, expected {(block.height, block.width)} and "
                               f"{list(bands)}")  # fmt: skip
    return np.stack([np.asarray(result[b], np.float32) for b in bands])


@dataclass
class DownloadReport:
    cells: int = 0
    done: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    requests: int = 0
    retried: int = 0
    tile_list: Path | None = None


def paths(out: Path, cell_id: str) -> tuple[Path, Path, Path]:
    """(features, labels, record) of a cell."""
    return (layout.downloaded_features(out) / f"{cell_id}.tif",
            layout.downloaded_labels(out) / f"{cell_id}.tif",
            layout.download_state(out) / f"{cell_id}.json")  # fmt: skip


def expression_digest(expression: Any) -> str:
    import ee

    text = json.dumps(ee.serializer.encode(expression, for_cloud_api=True), sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


def _identity(cell: CellGrid, digest: str) -> dict[str, Any]:
    return {"expression": digest, "west": cell.west, "north": cell.north,
            "pixel": cell.pixel, "side": cell.side}  # fmt: skip


def is_complete(out: Path, cell: CellGrid, digest: str) -> bool:
    """The cell's files are there, unchanged since written (size and modification time), and
    made from this expression on this grid."""
    record = read_record(paths(out, cell.id)[2])
    if record is None or record.get("identity") != _identity(cell, digest):
        return False
    files = record.get("files")
    if not isinstance(files, list) or len(files) < 2:  # features, labels and its legend
        return False
    return all(changed_file(entry, out) is None for entry in files)


def _write_cell(out: Path, cell: CellGrid, planes: np.ndarray, digest: str,
                output: OutputSettings) -> None:  # fmt: skip
    features_path, labels_path, record_path = paths(out, cell.id)
    valid = planes[-1] > 0
    values = np.where(valid, planes[: len(FEATURE_BANDS)], np.float32(np.nan))
    label = planes[len(FEATURE_BANDS)]
    codes = np.full(label.shape, UNKNOWN, np.uint8)
    codes[valid & (label == 1)] = WATER
    codes[valid & (label == 0)] = LAND
    grid = cell.grid()
    whole = Window(0, 0, cell.side, cell.side)
    specs = [BandSpec(name) for name in FEATURE_CHANNELS]
    with create_geotiff(features_path, grid, specs, np.float32, float("nan"), output,
                        product=False) as w:  # fmt: skip
        w.write(whole, values)
    band = class_band("noisy water label", {WATER: "water", LAND: "not water"})
    with create_geotiff(labels_path, grid, [band], np.uint8, UNKNOWN, output,
                        product=False) as w:  # fmt: skip
        w.write(whole, codes)
    files = output_fingerprints([features_path, labels_path], out)
    write_json_atomic(record_path, {"identity": _identity(cell, digest), "files": files})


def download(
    cells: list[CellGrid],
    expression: Any,
    out: Path,
    settings: GeeSettings,
    output: OutputSettings,
    fetch: Fetch | None = None,
    sleep: Callable[[float], None] | None = None,
    digest: str | None = None,
    progress: Callable[[str, str], None] | None = None,
) -> DownloadReport:
    """Download every cell not already complete; returns what was done, skipped and failed.
    `digest` names what the cells hold (default: the expression's own digest); it must not
    change when the grid grows, or every finished cell would look stale."""
    report = DownloadReport(cells=len(cells))
    digest = digest or expression_digest(expression)
    pending = []
    for cell in cells:
        if is_complete(out, cell, digest):
            report.skipped.append(cell.id)
        else:
            pending.append(cell)
    blocks = split(settings.cell_pixels, len(BANDS), settings.request_bytes)
    caller = Retrying(fetch or ee_fetch, settings.retries, settings.backoff, sleep)
    for cell in pending:
        for path in paths(out, cell.id)[:2]:
            remove_partials(path)
    buffers: dict[str, np.ndarray] = {}
    left = {cell.id: len(blocks) for cell in pending}  # blocks still to come per cell

    def settle(future: Future, cell: CellGrid, block: Window) -> None:
        if cell.id in report.failed:
            return
        try:
            planes = answer_planes(future.result(), block, cell.id)
        except Exception as exc:
            report.failed[cell.id] = _reason(exc)
            buffers.pop(cell.id, None)
            if progress:
                progress(cell.id, "failed")
            return
        if cell.id not in buffers:  # made on a cell's first block only
            buffers[cell.id] = np.zeros((len(BANDS), cell.side, cell.side), np.float32)
        buffers[cell.id][:, block.slices[0], block.slices[1]] = planes
        left[cell.id] -= 1
        if left[cell.id] == 0:
            try:
                _write_cell(out, cell, buffers.pop(cell.id), digest, output)
            except Exception as exc:
                report.failed[cell.id] = _reason(exc)
                if progress:
                    progress(cell.id, "failed")
                return
            report.done.append(cell.id)
            if progress:
                progress(cell.id, "done")

    with ThreadPoolExecutor(settings.concurrency, thread_name_prefix="computePixels") as pool:
        flying: dict[Future, tuple[CellGrid, Window]] = {}

        def drain(limit: int) -> None:
            """Settle requests as they finish until fewer than `limit` are in flight."""
            while len(flying) >= limit:
                finished, _ = wait(flying, return_when=FIRST_COMPLETED)
                for future in finished:
                    settle(future, *flying.pop(future))

        try:
            for cell, block in itertools.product(pending, blocks):
                drain(settings.concurrency)
                if cell.id in report.failed:
                    continue
                flying[pool.submit(caller, request(expression, cell, block))] = (cell, block)
                report.requests += 1
            drain(1)
        except BaseException:
            caller.stop.set()
            pool.shutdown(wait=True, cancel_futures=True)
            raise
    report.retried = caller.retried
    return report


def _reason(exc: BaseException) -> str:
    return str(exc) if str(exc) else type(exc).__name__


def write_tile_list(out: Path, cells: list[CellGrid], failed: Iterable[str] = ()) -> Path:
    """`tiles.txt`: the features file of every cell that is on disk, for the tile stages."""
    path = layout.downloaded_tiles(out)
    left_out = set(failed)
    lines = ["# Earth Engine cells: features per cell; noisy labels in labels/"]
    lines += [str(paths(out, c.id)[0].relative_to(out)) for c in cells if c.id not in left_out]
    with atomic_path(path) as tmp:
        tmp.write_text("\n".join(lines) + "\n")
    return path
