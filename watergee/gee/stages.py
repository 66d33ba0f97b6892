"""The Earth Engine steps of `watergee run` (gee-download, gee-export), and the download that
`watergee gee download` shares with them.

Both are run-wide units: a download is one task that keeps its own bounded pool of requests
(the project's quota is one number for the whole grid, not per worker), and an export turns
the one model the run trained into an expression.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from watergee.core import layout
from watergee.core.atomic import atomic_path
from watergee.core.config import Settings
from watergee.core.stage import StageResult
from watergee.core.tiles import Tile
from watergee.gee.composite import download_image, region
from watergee.gee.download import (
    DownloadReport,
    cell_grids,
    download,
    expression_digest,
    paths,
    write_tile_list,
)
from watergee.gee.grid import grid_bounds, read_grid
from watergee.gee.model_export import FOLDER, export_model
from watergee.gee.session import EarthEngineError, connect, offline
from watergee.models.artifact import METADATA, check_model_folder, read_metadata

log = logging.getLogger(__name__)
#: Announces a download: the project and the number of cells.
Announce = Callable[[str, int], None]


def failed_list(out: Path) -> Path:
    """The cells a download could not fetch, one `id<TAB>reason` per line."""
    return layout.download_state(out) / "failed.txt"


def download_grid(
    grid: Path,
    out: Path,
    settings: Settings,
    progress: Callable[[str, str], None] | None = None,
    announce: Announce | None = None,
) -> DownloadReport:
    """Connect, then fetch every cell of `grid` not already complete under `out`; write the
    tile list of the cells on disk and the list of those that failed."""
    opts = settings.gee
    cells = read_grid(grid, opts.cell)
    project = connect(opts)
    import ee

    ee.data.setMaxRetries(0)  # retries follow gee.retries and gee.backoff instead
    grids = cell_grids(cells, opts)
    if announce is not None:
        announce(project, len(grids))
    image = download_image(opts, region(grid_bounds(cells)))
    # what a cell holds depends on the composite settings, not on how big the grid is
    digest = expression_digest(download_image(opts, ee.Geometry.Point([0.0, 0.0])))
    report = download(grids, image, out, opts, settings.output, digest=digest,
                      progress=progress)  # fmt: skip
    report.tile_list = write_tile_list(out, grids, report.failed)
    with atomic_path(failed_list(out)) as tmp:
        tmp.write_text("".join(f"{cell}\t{why}\n" for cell, why in report.failed.items()))
    return report


def gee_download(unit: Tile, settings: Settings, out: Path) -> StageResult:
    """Every cell of the grid `unit.source` into OUT (features/, labels/, tiles.txt); the
    step fails while any cell is missing, so that nothing later is made of part of the grid,
    and a re-run fetches only what is missing."""
    done = [0]

    def progress(cell: str, state: str) -> None:
        done[0] += 1
        log.info("[%d] %s %s", done[0], cell, state)

    report = download_grid(unit.source, out, settings, progress,
                           lambda project, n: log.info("%d cells from %s", n, project))  # fmt: skip
    if report.failed:
        cell, why = next(iter(report.failed.items()))
        raise EarthEngineError(
            f"{len(report.failed)} of {report.cells} cells failed (first {cell}: {why}); "
            f"listed in {failed_list(out)}; run again to fetch only those"
        )
    outputs = [path for cell in [*report.done, *report.skipped] for path in paths(out, cell)[:2]]
    return StageResult([unit.source], [*sorted(outputs), report.tile_list],  # type: ignore[list-item]
                       {"cells": report.cells, "downloaded": len(report.done),
                        "requests": report.requests, "retried": report.retried})  # fmt: skip


def check_export(settings: Settings) -> None:
    """The model folder to export, checked before anything runs."""
    if settings.gee.model is not None:
        check_model_folder(settings.gee.model)


def gee_export(unit: Tile, settings: Settings, out: Path) -> StageResult:
    """The pixel CNN in `unit.source` as an Earth Engine expression, checked against Keras
    (offline: no credentials needed)."""
    folder = Path(unit.source)
    metadata = read_metadata(folder)
    with offline():
        report = export_model(folder)
    log.info("%s: %d operations, largest difference %.2g", folder, report.operations,
             report.max_difference)  # fmt: skip
    outputs = [Path(report.expression), folder / FOLDER / "export.json"]
    return StageResult([folder / METADATA, folder / metadata.file], outputs,
                       {"operations": report.operations,
                        "max_difference": report.max_difference})  # fmt: skip
